//! The monitored metric: which epoch's weights are the best (Keras' `ModelCheckpoint` with
//! `save_best_only`) and when to stop early (Keras' `EarlyStopping` with `min_delta = 0`).
//!
//! An epoch improves on the best so far when its metric is strictly better (higher `val_acc`,
//! lower `val_loss`; a NaN never improves). With a patience of N, training stops after N
//! epochs in a row without an improvement.

use serde::{Deserialize, Serialize};

use crate::train::EpochRecord;

#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Validation accuracy (higher is better).
    #[default]
    #[value(name = "val_acc")]
    ValAcc,
    /// Validation loss (lower is better).
    #[value(name = "val_loss")]
    ValLoss,
}

impl Metric {
    pub fn name(self) -> &'static str {
        match self {
            Metric::ValAcc => "val_acc",
            Metric::ValLoss => "val_loss",
        }
    }
    pub fn of(self, r: &EpochRecord) -> f32 {
        match self {
            Metric::ValAcc => r.val_acc,
            Metric::ValLoss => r.val_loss,
        }
    }
    fn better(self, new: f32, old: f32) -> bool {
        match self {
            Metric::ValAcc => new > old,
            Metric::ValLoss => new < old,
        }
    }
}

/// The best epoch so far and the epochs since it; saved in every checkpoint, so a resumed run
/// keeps counting where it stopped.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Monitor {
    pub metric: Metric,
    /// `(epoch, value)` of the best epoch so far (epochs count from 1).
    pub best: Option<(usize, f32)>,
    /// Epochs since the best one (or since the start, before any).
    pub since_best: usize,
}

impl Monitor {
    pub fn new(metric: Metric) -> Self {
        Monitor {
            metric,
            best: None,
            since_best: 0,
        }
    }

    /// Takes in one epoch's record; true when it is the new best.
    pub fn update(&mut self, r: &EpochRecord) -> bool {
        let value = self.metric.of(r);
        let improved = !value.is_nan()
            && self
                .best
                .is_none_or(|(_, best)| self.metric.better(value, best));
        if improved {
            self.best = Some((r.epoch, value));
            self.since_best = 0;
        } else {
            self.since_best += 1;
        }
        improved
    }

    /// Whether a run with this `patience` should stop now. As in Keras, a patience of 0 acts
    /// as 1: the run stops at the first epoch without improvement, never before the first.
    pub fn exhausted(&self, patience: Option<usize>) -> bool {
        patience.is_some_and(|p| self.since_best >= p.max(1))
    }

    /// `best: epoch 3, val_acc 0.4120`, or that there is none yet.
    pub fn describe_best(&self) -> String {
        match self.best {
            Some((epoch, v)) => format!("best: epoch {epoch}, {} {v:.4}", self.metric.name()),
            None => format!("no epoch with a finite {} yet", self.metric.name()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(epoch: usize, val_loss: f32, val_acc: f32) -> EpochRecord {
        EpochRecord {
            epoch,
            loss: 1.0,
            acc: 0.5,
            val_loss,
            val_acc,
            lr: 0.1,
            seconds: 1.0,
            images_per_sec: 1.0,
        }
    }

    #[test]
    fn best_and_patience_follow_keras() {
        let mut m = Monitor::new(Metric::ValAcc);
        let accs = [0.3, 0.5, 0.5, 0.4, f32::NAN, 0.6, 0.2];
        let improved: Vec<bool> = accs
            .iter()
            .enumerate()
            .map(|(i, &a)| m.update(&record(i + 1, 1.0, a)))
            .collect();
        // Equal is not better (Keras' strict comparison), and NaN never is.
        assert_eq!(improved, [true, true, false, false, false, true, false]);
        assert_eq!(m.best, Some((6, 0.6)));
        assert_eq!(m.since_best, 1);
        assert!(m.exhausted(Some(1)) && !m.exhausted(Some(2)) && !m.exhausted(None));

        let mut m = Monitor::new(Metric::ValLoss);
        for (i, l) in [2.0, 1.5, 1.7, 1.6].into_iter().enumerate() {
            m.update(&record(i + 1, l, 0.0));
        }
        assert_eq!(m.best, Some((2, 1.5)));
        assert_eq!(m.since_best, 2);
        assert!(m.exhausted(Some(2)));
        assert_eq!(m.describe_best(), "best: epoch 2, val_loss 1.5000");

        // Patience 0 is Keras' 1: nothing stops before an epoch without improvement.
        let mut m = Monitor::new(Metric::ValAcc);
        assert!(!m.exhausted(Some(0)));
        m.update(&record(1, 1.0, 0.5));
        assert!(!m.exhausted(Some(0)));
        m.update(&record(2, 1.0, 0.4));
        assert!(m.exhausted(Some(0)) && m.exhausted(Some(1)) && !m.exhausted(Some(2)));
    }
}
