//! Largest-remainder apportioning of a total over groups.

/// Splits `total` over groups in proportion to their `sizes` by largest remainders, so the
/// parts sum to exactly `min(total, Σ sizes)` and no part exceeds its group's size. Used to
/// stratify subsamples and splits by class.
pub fn apportion(sizes: &[usize], total: usize) -> Vec<usize> {
    let n: usize = sizes.iter().sum();
    if n == 0 {
        return vec![0; sizes.len()];
    }
    let total = total.min(n);
    let quotas: Vec<f64> = sizes
        .iter()
        .map(|&s| s as f64 * total as f64 / n as f64)
        .collect();
    let mut take: Vec<usize> = quotas
        .iter()
        .zip(sizes)
        .map(|(q, &s)| (q.floor() as usize).min(s))
        .collect();
    let mut order: Vec<usize> = (0..sizes.len()).collect();
    order.sort_by(|&a, &b| {
        (quotas[b] - quotas[b].floor()).total_cmp(&(quotas[a] - quotas[a].floor()))
    });
    let mut left = total - take.iter().sum::<usize>();
    while left > 0 {
        let before = left;
        for &g in &order {
            if left > 0 && take[g] < sizes[g] {
                take[g] += 1;
                left -= 1;
            }
        }
        if left == before {
            break; // cannot happen: total ≤ Σ sizes
        }
    }
    take
}

#[cfg(test)]
mod tests {
    use super::apportion;

    #[test]
    fn apportion_is_proportional_exact_and_bounded() {
        assert_eq!(apportion(&[300, 610, 90], 101), vec![30, 62, 9]);
        assert_eq!(apportion(&[1000, 2], 250), vec![250, 0]);
        assert_eq!(apportion(&[5, 5], 100), vec![5, 5]);
        assert_eq!(apportion(&[0, 0], 3), vec![0, 0]);
        for (sizes, total) in [
            (vec![7usize, 1, 1, 13], 9usize),
            (vec![3, 3, 3], 4),
            (vec![1, 0, 2], 2),
        ] {
            let t = apportion(&sizes, total);
            assert_eq!(t.iter().sum::<usize>(), total);
            assert!(t.iter().zip(&sizes).all(|(a, s)| a <= s));
        }
    }
}
