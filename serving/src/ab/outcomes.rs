//! What each variant's users did with what they were shown: hits, position-weighted gain, and
//! the difference to the control with a 95% confidence interval. Pure: the impressions and
//! the liked ratings come in, [`VariantOutcome`]s go out.
//!
//! The unit is the user, not the list: a user shown many lists (every refresh is one) is one
//! observation, so users are independent and a two-proportion test over them is sound. A user
//! has a **hit** when they rate ≥ 4 a movie shown to them in the top 10 of a list, within the
//! window (stream time) after that list. Only shown movies count, only inside the window.

use std::collections::HashMap;

use schemas::ab::{Difference, ExperimentConfig, HOLDOUT, VariantModel, VariantOutcome};
use store::Impression;

/// Positions that count: the top 10 of each list.
pub const TOP: usize = 10;
/// z for a two-sided 95% interval.
const Z95: f64 = 1.959_963_984_540_054;

#[derive(Default)]
struct Group {
    impressions: u64,
    /// Per user: each liked-in-window shown movie with the best position it was shown at.
    users: HashMap<i64, HashMap<i64, usize>>,
}

/// Outcomes per variant of `config` (in its order, then `holdout` if any user was held out),
/// from the experiment's `impressions` and the `liked` ratings `(user, movie, time)` of the
/// users shown them.
pub fn outcomes(
    config: &ExperimentConfig,
    impressions: &[Impression],
    liked: &[(i64, i64, i64)],
) -> Vec<VariantOutcome> {
    let window = (config.window_days * 86_400.0).round() as i64;
    let mut liked_by: HashMap<i64, HashMap<i64, i64>> = HashMap::new();
    for &(user, movie, at) in liked {
        liked_by.entry(user).or_default().insert(movie, at);
    }
    let mut groups: HashMap<&str, Group> = HashMap::new();
    for shown in impressions {
        let group = groups.entry(shown.variant.as_str()).or_default();
        group.impressions += 1;
        let hits = group.users.entry(shown.user_id).or_default();
        let Some(liked) = liked_by.get(&shown.user_id) else { continue };
        for (position, movie) in shown.movie_ids.iter().take(TOP).enumerate() {
            if let Some(&at) = liked.get(movie)
                && (shown.stream_time..=shown.stream_time.saturating_add(window)).contains(&at)
            {
                let best = hits.entry(*movie).or_insert(position + 1);
                *best = (*best).min(position + 1);
            }
        }
    }
    let mut named: Vec<(&str, VariantModel)> = config.variants.iter().map(|v| (v.name.as_str(), v.model)).collect();
    if config.holdout > 0.0 || groups.contains_key(HOLDOUT) {
        named.push((HOLDOUT, config.control().model));
    }
    let mut out: Vec<VariantOutcome> =
        named.iter().map(|&(name, model)| summarise(name, model, groups.get(name))).collect();
    let control = config.control().name.as_str();
    let base = out.iter().find(|o| o.variant == control).map(|o| (o.hit_users, o.users));
    for o in &mut out {
        if o.variant != control
            && let Some((x2, n2)) = base
        {
            o.vs_control = difference(o.hit_users, o.users, x2, n2);
        }
    }
    out
}

fn summarise(name: &str, model: VariantModel, group: Option<&Group>) -> VariantOutcome {
    let (impressions, users, hit_users, gain) = match group {
        None => (0, 0, 0, 0.0),
        Some(g) => {
            let hit_users = g.users.values().filter(|h| !h.is_empty()).count() as u64;
            let gain: f64 = g.users.values().flat_map(|h| h.values()).map(|&p| 1.0 / (1.0 + p as f64).log2()).sum();
            (g.impressions, g.users.len() as u64, hit_users, gain)
        }
    };
    let per_user = |x: f64| (users > 0).then(|| x / users as f64);
    VariantOutcome {
        variant: name.to_owned(),
        model,
        impressions,
        users,
        hit_users,
        hit_rate: per_user(hit_users as f64),
        gain: per_user(gain),
        vs_control: None,
    }
}

/// `x1/n1 − x2/n2` with its 95% interval (unpooled normal approximation) and the pooled
/// two-proportion z-test's two-sided p-value; `None` when either group is empty.
pub fn difference(x1: u64, n1: u64, x2: u64, n2: u64) -> Option<Difference> {
    if n1 == 0 || n2 == 0 {
        return None;
    }
    let (n1, n2) = (n1 as f64, n2 as f64);
    let (p1, p2) = (x1 as f64 / n1, x2 as f64 / n2);
    let diff = p1 - p2;
    let se = (p1 * (1.0 - p1) / n1 + p2 * (1.0 - p2) / n2).sqrt();
    let pooled = (x1 + x2) as f64 / (n1 + n2);
    let se_pooled = (pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n2)).sqrt();
    // The fit's error can put erfc(0) a hair above 1.
    let p_value =
        if se_pooled > 0.0 { erfc((diff / se_pooled).abs() / std::f64::consts::SQRT_2).min(1.0) } else { 1.0 };
    Some(Difference { hit_rate: diff, low: diff - Z95 * se, high: diff + Z95 * se, p_value })
}

/// The complementary error function (Numerical Recipes' `erfcc`, Chebyshev fit; relative
/// error below 1.2e-7 everywhere): enough for a p-value.
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98 + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let r = t * poly.exp();
    if x >= 0.0 { r } else { 2.0 - r }
}

#[cfg(test)]
mod tests {
    use schemas::ab::{DEFAULT_WINDOW_DAYS, VariantConfig};

    use super::*;

    const DAY: i64 = 86_400;

    fn config() -> ExperimentConfig {
        ExperimentConfig {
            variants: vec![
                VariantConfig { name: "control".into(), model: VariantModel::Served, share: 1.0 },
                VariantConfig { name: "treatment".into(), model: VariantModel::Ease, share: 1.0 },
            ],
            control: None,
            holdout: 0.0,
            salt: None,
            window_days: DEFAULT_WINDOW_DAYS,
        }
    }

    fn shown(user: i64, variant: &str, movies: &[i64], at: i64) -> Impression {
        Impression { user_id: user, variant: variant.into(), movie_ids: movies.to_vec(), stream_time: at }
    }

    #[test]
    fn the_interval_and_p_value_match_a_hand_computed_case() {
        // 60 of 200 against 40 of 200: difference 0.10; unpooled se = sqrt(.3·.7/200 + .2·.8/200)
        // = sqrt(0.00185) = 0.0430116, so the interval is 0.10 ± 1.95996·0.0430116 =
        // [0.0157, 0.1843]; pooled p = 0.25, se = sqrt(.25·.75·(2/200)) = 0.0433013,
        // z = 2.3094, two-sided p = 0.02092.
        let d = difference(60, 200, 40, 200).unwrap();
        assert!((d.hit_rate - 0.10).abs() < 1e-12);
        assert!((d.low - 0.015_698).abs() < 1e-5, "{d:?}");
        assert!((d.high - 0.184_302).abs() < 1e-5, "{d:?}");
        assert!((d.p_value - 0.020_92).abs() < 1e-4, "{d:?}");
        // Equal groups: no difference, p = 1; an empty group: nothing to say.
        let same = difference(10, 100, 10, 100).unwrap();
        assert_eq!((same.hit_rate, same.p_value), (0.0, 1.0));
        assert!(difference(1, 0, 1, 10).is_none());
        assert!((erfc(0.0) - 1.0).abs() < 1e-7 && (erfc(-1.0) - 1.842_700_79).abs() < 1e-6);
    }

    #[test]
    fn hits_count_only_shown_movies_liked_inside_the_window() {
        let t = 1_000_000_000;
        let impressions = vec![
            // User 1 (control) is shown 10 and 11 at t; likes 10 on day 3 (hit at position 1)
            // and 11 on day 8 (outside the 7-day window).
            shown(1, "control", &[10, 11], t),
            // User 2 (control) likes 20 before it was shown (not a hit) and 99, never shown.
            shown(2, "control", &[20, 21], t),
            // User 3 (treatment) is shown 30 at position 2 twice; likes it on day 1: one hit,
            // counted once, at its best position.
            shown(3, "treatment", &[31, 30], t),
            shown(3, "treatment", &[30, 31], t + DAY / 2),
            // User 4 (treatment) likes 40, shown at position 11: outside the top 10.
            shown(4, "treatment", &(1..=10).chain([40]).collect::<Vec<_>>(), t),
        ];
        let liked = vec![
            (1, 10, t + 3 * DAY),
            (1, 11, t + 8 * DAY),
            (2, 20, t - 1),
            (2, 99, t + DAY),
            (3, 30, t + DAY),
            (4, 40, t + DAY),
        ];
        let out = outcomes(&config(), &impressions, &liked);
        assert_eq!(out.len(), 2, "no holdout group without a holdout");
        let (c, v) = (&out[0], &out[1]);
        assert_eq!((c.variant.as_str(), c.impressions, c.users, c.hit_users), ("control", 2, 2, 1));
        assert_eq!((v.variant.as_str(), v.impressions, v.users, v.hit_users), ("treatment", 3, 2, 1));
        assert_eq!((c.hit_rate, v.hit_rate), (Some(0.5), Some(0.5)));
        // Gain: user 1's hit at position 1 (1/log2 2 = 1) over 2 users; user 3's at position 1
        // of the second list (the best it was shown at).
        assert_eq!((c.gain, v.gain), (Some(0.5), Some(0.5)));
        assert!(c.vs_control.is_none());
        assert_eq!(v.vs_control.unwrap().hit_rate, 0.0);

        // A wider window takes in user 1's second like: one more hit movie, same hit users.
        let mut wide = config();
        wide.window_days = 10.0;
        let out = outcomes(&wide, &impressions, &liked);
        let gain = 1.0 + 1.0 / 3f64.log2();
        assert!((out[0].gain.unwrap() - gain / 2.0).abs() < 1e-12);
    }

    #[test]
    fn a_holdout_is_reported_as_its_own_group_and_empty_variants_as_zero() {
        let mut c = config();
        c.holdout = 0.1;
        c.variants.push(VariantConfig { name: "unused".into(), model: VariantModel::Popularity, share: 0.0 });
        let t = 1_000_000_000;
        let out = outcomes(&c, &[shown(5, HOLDOUT, &[1], t), shown(6, "control", &[1], t)], &[(5, 1, t)]);
        let names: Vec<&str> = out.iter().map(|o| o.variant.as_str()).collect();
        assert_eq!(names, ["control", "treatment", "unused", HOLDOUT]);
        let held = &out[3];
        assert_eq!((held.users, held.hit_users, held.model), (1, 1, VariantModel::Served));
        assert_eq!((out[1].users, out[1].hit_rate, out[1].vs_control), (0, None, None));
    }
}
