//! What each variant's users did with what they were shown: hits, position-weighted gain, and
//! the difference to the control with a 95% confidence interval. Pure: the impressions and
//! the liked ratings come in, [`VariantOutcome`]s go out.
//!
//! A shown list (an impression) is a **hit** when its user rates ≥ 4 one of its top 10 movies
//! within the window (stream time) after it was shown: only shown movies count, only inside
//! the window. The hit rate@10 is hit lists over lists. Lists are not independent (a user
//! shown fifty lists is one person), so the interval treats each user as a cluster: the
//! variance of the ratio `Σ hits / Σ lists` over users is the delta-method (cluster-robust)
//! one, `n/(n−1) · Σᵢ (hᵢ − p·mᵢ)² / (Σᵢ mᵢ)²` for user i's `hᵢ` hit lists of `mᵢ`; the
//! difference to the control is `Δ ± 1.96·√(V₁ + V₂)`, its p-value that of `z = Δ/√(V₁ + V₂)`.
//! With one list per user this is the unpooled two-proportion interval (times `n/(n−1)`).

use std::collections::HashMap;

use schemas::ab::{Difference, ExperimentConfig, HOLDOUT, VariantModel, VariantOutcome};
use store::Impression;

/// Positions that count: the top 10 of each list.
pub const TOP: usize = 10;
/// z for a two-sided 95% interval.
const Z95: f64 = 1.959_963_984_540_054;

/// One user's lists in a variant.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct UserLists {
    /// Lists shown.
    pub shown: u64,
    /// Of them, lists with a hit.
    pub hits: u64,
    /// Σ over those lists of Σ 1/log2(1 + position) over their liked movies.
    pub gain: f64,
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
    let mut groups: HashMap<&str, HashMap<i64, UserLists>> = HashMap::new();
    for shown in impressions {
        let lists = groups.entry(shown.variant.as_str()).or_default().entry(shown.user_id).or_default();
        lists.shown += 1;
        let Some(liked) = liked_by.get(&shown.user_id) else { continue };
        let gain: f64 = shown
            .movie_ids
            .iter()
            .take(TOP)
            .enumerate()
            .filter(|(_, movie)| {
                liked
                    .get(movie)
                    .is_some_and(|&at| (shown.stream_time..=shown.stream_time.saturating_add(window)).contains(&at))
            })
            .map(|(position, _)| 1.0 / (2.0 + position as f64).log2())
            .sum();
        if gain > 0.0 {
            lists.hits += 1;
            lists.gain += gain;
        }
    }
    let mut named: Vec<(&str, VariantModel)> = config.variants.iter().map(|v| (v.name.as_str(), v.model)).collect();
    if config.holdout > 0.0 || groups.contains_key(HOLDOUT) {
        named.push((HOLDOUT, config.control().model));
    }
    let users =
        |name: &str| -> Vec<UserLists> { groups.get(name).map(|g| g.values().copied().collect()).unwrap_or_default() };
    let control = users(&config.control().name);
    named
        .iter()
        .map(|&(name, model)| {
            let mine = users(name);
            let mut outcome = summarise(name, model, &mine);
            if name != config.control().name {
                outcome.vs_control = difference(&mine, &control);
            }
            outcome
        })
        .collect()
}

fn summarise(name: &str, model: VariantModel, users: &[UserLists]) -> VariantOutcome {
    let impressions: u64 = users.iter().map(|u| u.shown).sum();
    let hit_impressions: u64 = users.iter().map(|u| u.hits).sum();
    let gain: f64 = users.iter().map(|u| u.gain).sum();
    let per_list = |x: f64| (impressions > 0).then(|| x / impressions as f64);
    VariantOutcome {
        variant: name.to_owned(),
        model,
        impressions,
        hit_impressions,
        users: users.len() as u64,
        hit_users: users.iter().filter(|u| u.hits > 0).count() as u64,
        hit_rate: per_list(hit_impressions as f64),
        gain: per_list(gain),
        vs_control: None,
    }
}

/// The hit rate `Σ hits / Σ shown` of these users and its cluster-robust variance; `None`
/// without two users and a list.
fn rate_and_variance(users: &[UserLists]) -> Option<(f64, f64)> {
    let n = users.len() as f64;
    let shown: u64 = users.iter().map(|u| u.shown).sum();
    if users.len() < 2 || shown == 0 {
        return None;
    }
    let p = users.iter().map(|u| u.hits).sum::<u64>() as f64 / shown as f64;
    let residuals: f64 = users.iter().map(|u| (u.hits as f64 - p * u.shown as f64).powi(2)).sum();
    Some((p, n / (n - 1.0) * residuals / (shown as f64).powi(2)))
}

/// The hit rate of `variant`'s users minus `control`'s, with its 95% interval and two-sided
/// p-value (see the module doc); `None` unless both have two users with lists.
pub fn difference(variant: &[UserLists], control: &[UserLists]) -> Option<Difference> {
    let (p1, v1) = rate_and_variance(variant)?;
    let (p2, v2) = rate_and_variance(control)?;
    let diff = p1 - p2;
    let se = (v1 + v2).sqrt();
    // The fit's error can put erfc(0) a hair above 1.
    let p_value = if se > 0.0 { erfc(diff.abs() / se / std::f64::consts::SQRT_2).min(1.0) } else { 1.0 };
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

    fn lists(shown: u64, hits: u64) -> UserLists {
        UserLists { shown, hits, gain: 0.0 }
    }

    #[test]
    fn the_interval_and_p_value_match_a_hand_computed_case() {
        // One list per user, 60 hits of 200 against 40 of 200: p = 0.3 and 0.2. Each side's
        // variance is n/(n−1)·Σ(h − p)²/n² = (200/199)·p(1−p)/200: 0.0010553 and 0.00080402,
        // so se = √0.0018593 = 0.043120, the interval 0.10 ± 1.95996·0.043120 =
        // [0.015487, 0.184513], z = 2.31911, p = 0.020389.
        let variant: Vec<UserLists> = (0..200).map(|i| lists(1, u64::from(i < 60))).collect();
        let control: Vec<UserLists> = (0..200).map(|i| lists(1, u64::from(i < 40))).collect();
        let d = difference(&variant, &control).unwrap();
        assert!((d.hit_rate - 0.10).abs() < 1e-12);
        assert!((d.low - 0.015_487).abs() < 2e-6, "{d:?}");
        assert!((d.high - 0.184_513).abs() < 2e-6, "{d:?}");
        assert!((d.p_value - 0.020_389).abs() < 2e-5, "{d:?}");
        // Clusters: users of 2 and 4 lists. Variant: (2 hits of 2), (0 of 4) → p = 1/3,
        // residuals (2 − 2/3)² + (0 − 4/3)² = 32/9, V = 2 · (32/9) / 36 = 0.197531.
        // Control: (1 of 2), (1 of 4) → p = 1/3, residuals (1/3)² + (−1/3)² = 2/9,
        // V = 2 · (2/9) / 36 = 0.0123457. Δ = 0, se = √0.209877 = 0.458123.
        let d = difference(&[lists(2, 2), lists(4, 0)], &[lists(2, 1), lists(4, 1)]).unwrap();
        assert!(d.hit_rate.abs() < 1e-12 && (d.high - 1.95996 * 0.458_123).abs() < 1e-4, "{d:?}");
        assert_eq!(d.p_value, 1.0);
        // Fewer than two users: nothing to say.
        assert!(difference(&[lists(5, 1)], &control).is_none());
        assert!((erfc(0.0) - 1.0).abs() < 1e-7 && (erfc(-1.0) - 1.842_700_79).abs() < 1e-6);
    }

    #[test]
    fn hits_count_only_shown_movies_liked_inside_the_window() {
        let t = 1_000_000_000;
        let impressions = vec![
            // User 1 (control) is shown 10 and 11 at t; likes 10 on day 3 (a hit, position 1)
            // and 11 on day 8 (outside the 7-day window).
            shown(1, "control", &[10, 11], t),
            // User 2 (control) likes 20 before it was shown (no hit) and 99, never shown.
            shown(2, "control", &[20, 21], t),
            // User 3 (treatment) is shown 30 at position 2, then at position 1; likes it on
            // day 1: both lists are hits.
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
        assert_eq!(
            (c.variant.as_str(), c.impressions, c.hit_impressions, c.users, c.hit_users),
            ("control", 2, 1, 2, 1)
        );
        assert_eq!(
            (v.variant.as_str(), v.impressions, v.hit_impressions, v.users, v.hit_users),
            ("treatment", 3, 2, 2, 1)
        );
        assert_eq!((c.hit_rate, v.hit_rate), (Some(0.5), Some(2.0 / 3.0)));
        // Gain per list: control 1/log2(2) = 1 over 2 lists; treatment 1/log2(3) + 1 over 3.
        assert_eq!(c.gain, Some(0.5));
        assert!((v.gain.unwrap() - (1.0 / 3f64.log2() + 1.0) / 3.0).abs() < 1e-12);
        assert!(c.vs_control.is_none());
        assert!((v.vs_control.unwrap().hit_rate - (2.0 / 3.0 - 0.5)).abs() < 1e-12);

        // A wider window takes in user 1's second like: the same hit list gains position 2.
        let mut wide = config();
        wide.window_days = 10.0;
        let out = outcomes(&wide, &impressions, &liked);
        assert_eq!(out[0].hit_impressions, 1);
        assert!((out[0].gain.unwrap() - (1.0 + 1.0 / 3f64.log2()) / 2.0).abs() < 1e-12);
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
