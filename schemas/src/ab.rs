//! A/B experiments on live traffic: their configuration, the sticky assignment of users to
//! variants, and what `GET /experiments/{name}` answers.
//!
//! Assignment is a pure function of the experiment's salt and the user id (SplitMix64 over an
//! FNV-1a hash of the salt), so every replica and every restart puts a user in the same variant
//! without sharing any state. A `holdout` share of users is set aside first: they see the
//! control's model and are reported as their own group, `holdout`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::splitmix::splitmix64;

/// Longest experiment or variant name.
pub const MAX_NAME: usize = 64;
/// Most variants in one experiment.
pub const MAX_VARIANTS: usize = 8;
/// The name holdout users are reported under.
pub const HOLDOUT: &str = "holdout";
/// Default outcome window: a shown movie liked within 7 days of stream time is a hit.
pub const DEFAULT_WINDOW_DAYS: f64 = 7.0;

/// The model configurations a variant can serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum VariantModel {
    /// What serving answers without an experiment: EASE candidates re-ranked by boosted trees
    /// over the user's live history (trending when the retrain gate turned personal lists off).
    Served,
    /// EASE alone over the live history, without the re-ranker.
    Ease,
    /// The online matrix factorisation, updated on every rating.
    OnlineMf,
    /// The recency-weighted popularity list (the user's rated movies left out).
    Popularity,
    /// Movies drawn at random from those the last retrain knows (rated ones left out): a
    /// floor, e.g. to check that an experiment detects a real difference.
    Random,
}

impl VariantModel {
    /// Every model, in a stable order.
    pub const ALL: [VariantModel; 5] = [
        VariantModel::Served,
        VariantModel::Ease,
        VariantModel::OnlineMf,
        VariantModel::Popularity,
        VariantModel::Random,
    ];

    /// The wire name (`served`, `ease`, `online-mf`, `popularity`, `random`).
    pub fn as_str(self) -> &'static str {
        match self {
            VariantModel::Served => "served",
            VariantModel::Ease => "ease",
            VariantModel::OnlineMf => "online-mf",
            VariantModel::Popularity => "popularity",
            VariantModel::Random => "random",
        }
    }
}

impl fmt::Display for VariantModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for VariantModel {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        VariantModel::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| format!("unknown model {s:?}; expected one of served, ease, online-mf, popularity, random"))
    }
}

/// One arm of an experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VariantConfig {
    /// Its name, as lists, metrics and outcomes report it (letters, digits, `-`, `_`, `.`).
    pub name: String,
    /// The model its users' lists come from.
    pub model: VariantModel,
    /// Relative share of the experiment's (non-holdout) users; shares need not sum to 1.
    #[schema(minimum = 0.0)]
    pub share: f64,
}

/// An experiment's configuration: the body of `PUT /experiments/{name}` and of
/// `serving demo --experiment FILE` (which also takes `name`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExperimentConfig {
    /// The arms; the first is the control unless `control` names another.
    pub variants: Vec<VariantConfig>,
    /// The variant the others are compared with, and that holdout users see.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control: Option<String>,
    /// Share of all users set aside (0 to 0.5): they see the control and are reported as
    /// `holdout`.
    #[serde(default)]
    #[schema(minimum = 0.0, maximum = 0.5)]
    pub holdout: f64,
    /// Mixed into the assignment hash; defaults to the experiment's name. A new salt reshuffles
    /// every user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub salt: Option<String>,
    /// A shown movie the user rates ≥ 4 within this many days of stream time is a hit
    /// (default 7).
    #[serde(default = "default_window")]
    #[schema(minimum = 0.0, maximum = 365.0)]
    pub window_days: f64,
}

fn default_window() -> f64 {
    DEFAULT_WINDOW_DAYS
}

/// Whether `name` is a valid experiment or variant name: 1 to [`MAX_NAME`] letters, digits,
/// `-`, `_` and `.`, at least one a letter or digit (`.` and `..` cannot be a URL segment).
pub fn valid_name(name: &str) -> bool {
    name.len() <= MAX_NAME
        && name.bytes().any(|b| b.is_ascii_alphanumeric())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Where a user falls in an experiment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Assignment<'a> {
    /// The variant's name, or [`HOLDOUT`].
    pub variant: &'a str,
    /// The model the user's lists come from.
    pub model: VariantModel,
}

impl ExperimentConfig {
    /// Checks names, shares, the holdout and the window.
    ///
    /// # Errors
    /// What is wrong, in a sentence.
    pub fn validate(&self) -> Result<(), String> {
        if self.variants.is_empty() || self.variants.len() > MAX_VARIANTS {
            return Err(format!("an experiment has 1 to {MAX_VARIANTS} variants, got {}", self.variants.len()));
        }
        for (i, v) in self.variants.iter().enumerate() {
            if !valid_name(&v.name) || v.name == HOLDOUT {
                return Err(format!(
                    "variant name {:?} must be 1 to {MAX_NAME} letters, digits, '-', '_' or '.', and not {HOLDOUT:?}",
                    v.name
                ));
            }
            if self.variants[..i].iter().any(|o| o.name == v.name) {
                return Err(format!("variant {:?} is named twice", v.name));
            }
            if !(v.share.is_finite() && v.share >= 0.0) {
                return Err(format!("variant {:?} has share {}; shares are finite and ≥ 0", v.name, v.share));
            }
        }
        if self.variants.iter().map(|v| v.share).sum::<f64>() <= 0.0 {
            return Err("at least one variant needs a share above 0".into());
        }
        if let Some(c) = &self.control
            && !self.variants.iter().any(|v| &v.name == c)
        {
            return Err(format!("control {c:?} is not one of the variants"));
        }
        if !(0.0..=0.5).contains(&self.holdout) {
            return Err(format!("holdout must be between 0 and 0.5, got {}", self.holdout));
        }
        if !(self.window_days > 0.0 && self.window_days <= 365.0) {
            return Err(format!("windowDays must be above 0 and at most 365, got {}", self.window_days));
        }
        if let Some(salt) = &self.salt
            && (salt.is_empty() || salt.len() > 256)
        {
            return Err("salt must be 1 to 256 bytes".into());
        }
        Ok(())
    }

    /// The control variant.
    pub fn control(&self) -> &VariantConfig {
        self.control.as_ref().and_then(|c| self.variants.iter().find(|v| &v.name == c)).unwrap_or(&self.variants[0])
    }

    /// The user's variant: a uniform draw from the hash of the salt (or `name`) and the user
    /// id, the first `holdout` of it set aside, the rest split by share. Call on a validated
    /// config.
    pub fn assign<'a>(&'a self, name: &str, user: i64) -> Assignment<'a> {
        let u = unit(self.salt.as_deref().unwrap_or(name), user);
        if u < self.holdout {
            return Assignment { variant: HOLDOUT, model: self.control().model };
        }
        let rest = (u - self.holdout) / (1.0 - self.holdout);
        let total: f64 = self.variants.iter().map(|v| v.share).sum();
        let mut upto = 0.0;
        for v in &self.variants {
            upto += v.share / total;
            if rest < upto && v.share > 0.0 {
                return Assignment { variant: &v.name, model: v.model };
            }
        }
        // Rounding left `rest` just above the last bound: the last variant with a share.
        let last = self.variants.iter().rev().find(|v| v.share > 0.0).unwrap_or(&self.variants[0]);
        Assignment { variant: &last.name, model: last.model }
    }
}

/// FNV-1a over the salt, then SplitMix64 with the user id: a draw in `[0, 1)` that is the same
/// on every machine and in every release (unlike `std`'s hasher, whose algorithm may change).
fn unit(salt: &str, user: i64) -> f64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in salt.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    let z = splitmix64(splitmix64(h) ^ user as u64);
    (z >> 11) as f64 / (1u64 << 53) as f64
}

/// Where an experiment is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ExperimentStatus {
    /// Configured, not serving yet.
    Draft,
    /// Splitting traffic now (at most one experiment at a time).
    Running,
    /// Stopped: lists come from the served model again; outcomes stay.
    Stopped,
}

impl ExperimentStatus {
    /// `draft`, `running` or `stopped`, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            ExperimentStatus::Draft => "draft",
            ExperimentStatus::Running => "running",
            ExperimentStatus::Stopped => "stopped",
        }
    }
}

impl FromStr for ExperimentStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "draft" => Ok(ExperimentStatus::Draft),
            "running" => Ok(ExperimentStatus::Running),
            "stopped" => Ok(ExperimentStatus::Stopped),
            other => Err(format!("unknown experiment status {other:?}")),
        }
    }
}

/// One recorded change of an experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExperimentChange {
    /// Unix seconds.
    pub at: i64,
    /// `created`, `changed`, `started` or `stopped`.
    pub action: String,
    /// The configuration from then on.
    pub config: ExperimentConfig,
}

/// An experiment as stored: name, configuration and status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExperimentSummary {
    /// Its name.
    pub name: String,
    /// `draft`, `running` or `stopped`.
    pub status: ExperimentStatus,
    /// The current configuration.
    pub config: ExperimentConfig,
    /// Unix seconds of the last change.
    pub updated_at: i64,
}

/// `GET /experiments`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExperimentList {
    /// Every experiment, by name.
    pub experiments: Vec<ExperimentSummary>,
}

/// A variant's difference to the control in hit rate, with its 95% confidence interval (users
/// as clusters: see `GET /experiments/{name}`'s documentation).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Difference {
    /// Hit rate minus the control's.
    pub hit_rate: f64,
    /// Lower end of the 95% interval (normal approximation, cluster-robust variance).
    pub low: f64,
    /// Upper end.
    pub high: f64,
    /// Two-sided p-value of the difference's z statistic.
    pub p_value: f64,
}

/// What one variant's users did with what they were shown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VariantOutcome {
    /// Variant name, or `holdout`.
    pub variant: String,
    /// The model its lists came from.
    pub model: VariantModel,
    /// Lists shown.
    pub impressions: u64,
    /// Lists with a hit: their user liked (rated ≥ 4) one of their top 10 movies within the
    /// window after the list was shown.
    pub hit_impressions: u64,
    /// Distinct users shown a list.
    pub users: u64,
    /// Users with at least one hit list.
    pub hit_users: u64,
    /// Hit rate@10: `hitImpressions / impressions` (null without lists).
    pub hit_rate: Option<f64>,
    /// Mean per list of Σ 1/log2(1 + position) over its liked movies: NDCG-style,
    /// position-weighted gain (null without lists).
    pub gain: Option<f64>,
    /// The difference to the control (null for the control itself and without users).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vs_control: Option<Difference>,
}

/// `GET /experiments/{name}`: configuration, status, history and outcomes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExperimentReport {
    /// Its name.
    pub name: String,
    /// `draft`, `running` or `stopped`.
    pub status: ExperimentStatus,
    /// The current configuration.
    pub config: ExperimentConfig,
    /// The control's name.
    pub control: String,
    /// Every change, oldest first.
    pub history: Vec<ExperimentChange>,
    /// One per variant (config order), then `holdout` when there is one.
    pub outcomes: Vec<VariantOutcome>,
    /// Unix seconds when the outcomes were computed (they are refreshed every few seconds).
    pub computed_at: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(shares: &[f64], holdout: f64) -> ExperimentConfig {
        ExperimentConfig {
            variants: shares
                .iter()
                .enumerate()
                .map(|(i, &share)| VariantConfig { name: format!("v{i}"), model: VariantModel::ALL[i % 5], share })
                .collect(),
            control: None,
            holdout,
            salt: None,
            window_days: DEFAULT_WINDOW_DAYS,
        }
    }

    /// χ² statistic of observed counts against expected proportions.
    fn chi_square(observed: &[u64], expected: &[f64], n: u64) -> f64 {
        observed
            .iter()
            .zip(expected)
            .map(|(&o, &p)| {
                let e = p * n as f64;
                (o as f64 - e).powi(2) / e
            })
            .sum()
    }

    #[test]
    fn shares_hold_over_100k_users_by_chi_square() {
        let c = config(&[1.0, 2.0, 1.0], 0.1);
        c.validate().unwrap();
        let n = 100_000u64;
        let mut counts = [0u64; 4]; // v0, v1, v2, holdout
        for user in 1..=n as i64 {
            let a = c.assign("exp", user);
            let i = if a.variant == HOLDOUT { 3 } else { a.variant[1..].parse::<usize>().unwrap() };
            counts[i] += 1;
        }
        let expected = [0.9 * 0.25, 0.9 * 0.5, 0.9 * 0.25, 0.1];
        // 3 degrees of freedom: P(χ² > 16.27) = 0.001.
        let chi = chi_square(&counts, &expected, n);
        assert!(chi < 16.27, "χ² = {chi:.2} for {counts:?}");
        // A skewed split fails the same test: it has power.
        let skewed = [counts[0] + 2000, counts[1] - 2000, counts[2], counts[3]];
        assert!(chi_square(&skewed, &expected, n) > 16.27);
    }

    #[test]
    fn assignment_is_sticky_salted_and_holdout_sees_the_control() {
        let mut c = config(&[1.0, 1.0], 0.2);
        c.control = Some("v1".into());
        c.validate().unwrap();
        let first: Vec<String> = (1..=1000).map(|u| c.assign("exp", u).variant.to_owned()).collect();
        let again: Vec<String> = (1..=1000).map(|u| c.assign("exp", u).variant.to_owned()).collect();
        assert_eq!(first, again);
        // Known values (computed independently, in Python) pin the hash across releases:
        // replicas of different builds agree.
        assert_eq!(unit("exp", 1), 0.083_869_686_826_711_81);
        assert_eq!(unit("exp", 2), 0.172_647_605_282_303_05);
        assert_ne!(unit("exp", 1), unit("exp2", 1));
        let held: Vec<i64> = (1..=1000).filter(|&u| c.assign("exp", u).variant == HOLDOUT).collect();
        assert!((150..=250).contains(&held.len()), "{}", held.len());
        assert!(held.iter().all(|&u| c.assign("exp", u).model == c.variants[1].model));
        // Another salt reshuffles users.
        c.salt = Some("other".into());
        let moved = (1..=1000).filter(|&u| c.assign("exp", u).variant != first[u as usize - 1]).count();
        assert!(moved > 300, "{moved}");
        // A zero share gets nobody.
        let z = config(&[0.0, 1.0], 0.0);
        assert!((1..=1000).all(|u| z.assign("e", u).variant == "v1"));
    }

    #[test]
    fn bad_configs_are_refused_with_a_reason() {
        assert!(config(&[], 0.0).validate().unwrap_err().contains("variants"));
        assert!(config(&[1.0], 0.6).validate().unwrap_err().contains("holdout"));
        assert!(config(&[-1.0, 1.0], 0.0).validate().unwrap_err().contains("share"));
        assert!(config(&[0.0, 0.0], 0.0).validate().unwrap_err().contains("above 0"));
        let mut c = config(&[1.0, 1.0], 0.0);
        c.variants[1].name = "v0".into();
        assert!(c.validate().unwrap_err().contains("twice"));
        c.variants[1].name = "has space".into();
        assert!(c.validate().is_err());
        c.variants[1].name = HOLDOUT.into();
        assert!(c.validate().is_err());
        assert!(!valid_name("..") && !valid_name(".") && !valid_name("") && valid_name("v1.2"));
        let mut c = config(&[1.0], 0.0);
        c.control = Some("nope".into());
        assert!(c.validate().unwrap_err().contains("control"));
        let mut c = config(&[1.0], 0.0);
        c.window_days = 0.0;
        assert!(c.validate().unwrap_err().contains("windowDays"));
        let parsed: ExperimentConfig =
            serde_json::from_str(r#"{"variants":[{"name":"a","model":"online-mf","share":1}],"holdout":0.05}"#)
                .unwrap();
        assert_eq!((parsed.window_days, parsed.variants[0].model), (7.0, VariantModel::OnlineMf));
        assert!(serde_json::from_str::<ExperimentConfig>(r#"{"variants":[],"extra":1}"#).is_err());
        assert!(
            serde_json::from_str::<ExperimentConfig>(r#"{"variants":[{"name":"a","model":"x","share":1}]}"#).is_err()
        );
    }
}
