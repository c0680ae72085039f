//! Point clouds: the representation of one layer on one split, with labels.

use funnel_core::apportion;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

/// `n` points in `d` dimensions, row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct Points {
    pub data: Vec<f32>,
    pub n: usize,
    pub d: usize,
}

impl Points {
    pub fn new(data: Vec<f32>, n: usize, d: usize) -> Self {
        assert_eq!(data.len(), n * d, "points: data length is not n·d");
        Self { data, n, d }
    }

    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.d..(i + 1) * self.d]
    }

    /// The rows `idx`, in that order.
    pub fn select(&self, idx: &[usize]) -> Points {
        let mut data = Vec::with_capacity(idx.len() * self.d);
        for &i in idx {
            data.extend_from_slice(self.row(i));
        }
        Points::new(data, idx.len(), self.d)
    }

    /// Whether every coordinate is finite.
    pub fn all_finite(&self) -> bool {
        self.data.iter().all(|v| v.is_finite())
    }
}

/// One layer's representation of one split: points and their class labels.
#[derive(Clone, Debug, PartialEq)]
pub struct Cloud {
    pub points: Points,
    pub labels: Vec<usize>,
    pub num_classes: usize,
}

impl Cloud {
    pub fn new(points: Points, labels: Vec<usize>, num_classes: usize) -> Self {
        assert_eq!(points.n, labels.len(), "cloud: points and labels disagree");
        Self {
            points,
            labels,
            num_classes,
        }
    }

    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    pub fn dim(&self) -> usize {
        self.points.d
    }

    /// Indices of the points of each class.
    pub fn class_indices(&self) -> Vec<Vec<usize>> {
        class_indices(&self.labels, self.num_classes)
    }

    /// Class proportions π_y.
    pub fn class_weights(&self) -> Vec<f64> {
        let n = self.len().max(1) as f64;
        self.class_indices()
            .iter()
            .map(|c| c.len() as f64 / n)
            .collect()
    }

    pub fn select(&self, idx: &[usize]) -> Cloud {
        Cloud::new(
            self.points.select(idx),
            idx.iter().map(|&i| self.labels[i]).collect(),
            self.num_classes,
        )
    }
}

pub fn class_indices(labels: &[usize], num_classes: usize) -> Vec<Vec<usize>> {
    let mut out = vec![Vec::new(); num_classes];
    for (i, &y) in labels.iter().enumerate() {
        out[y].push(i);
    }
    out
}

/// At most `max` indices, drawn without replacement and stratified by class (each class keeps
/// its share, rounded so the total is exactly `min(max, n)`); sorted.
pub fn stratified_subsample(
    labels: &[usize],
    num_classes: usize,
    max: usize,
    rng: &mut ChaCha8Rng,
) -> Vec<usize> {
    let n = labels.len();
    if n <= max {
        return (0..n).collect();
    }
    let classes = class_indices(labels, num_classes);
    let sizes: Vec<usize> = classes.iter().map(Vec::len).collect();
    let take = apportion(&sizes, max);
    let mut out = Vec::with_capacity(max);
    for (c, idx) in classes.into_iter().enumerate() {
        let mut idx = idx;
        idx.shuffle(rng);
        out.extend_from_slice(&idx[..take[c]]);
    }
    out.sort_unstable();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn stratified_subsample_keeps_class_shares_and_size() {
        let labels: Vec<usize> = (0..1000)
            .map(|i| {
                if i % 10 < 3 {
                    0
                } else if i % 10 < 9 {
                    1
                } else {
                    2
                }
            })
            .collect();
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let idx = stratified_subsample(&labels, 3, 101, &mut rng);
        assert_eq!(idx.len(), 101);
        let mut seen = std::collections::HashSet::new();
        assert!(idx.iter().all(|i| seen.insert(*i)), "duplicates");
        let counts = class_indices(&idx.iter().map(|&i| labels[i]).collect::<Vec<_>>(), 3);
        let c: Vec<usize> = counts.iter().map(Vec::len).collect();
        assert_eq!(c.iter().sum::<usize>(), 101);
        assert!(
            (c[0] as i64 - 30).abs() <= 1
                && (c[1] as i64 - 61).abs() <= 1
                && (c[2] as i64 - 10).abs() <= 1,
            "{c:?}"
        );
        assert_eq!(stratified_subsample(&labels, 3, 5000, &mut rng).len(), 1000);
    }
}
