//! ipvsadm's `print_largenum`: counters in a 9-character column, scaled to
//! K/M/G/T past 10^8 unless `--exact` is given.

/// Format `n` as ipvsadm does in `--stats` and `--rate` columns.
pub fn format_largenum(n: u64, exact: bool) -> String {
    if exact {
        let digits = n.to_string();
        let width = (digits.len() + 1).max(9);
        return format!("{digits:>width$}");
    }
    if n < 100_000_000 {
        format!("{n:>9}")
    } else if n < 1_000_000_000 {
        format!("{:>8}K", n / 1_000)
    } else if n < 100_000_000_000 {
        format!("{:>8}M", n / 1_000_000)
    } else if n < 100_000_000_000_000 {
        format!("{:>8}G", n / 1_000_000_000)
    } else {
        format!("{:>8}T", n / 1_000_000_000_000)
    }
}

#[cfg(test)]
mod tests {
    use super::format_largenum;

    #[test]
    fn small_numbers_fill_nine_columns() {
        assert_eq!(format_largenum(0, false), "        0");
        assert_eq!(format_largenum(99_999_999, false), " 99999999");
    }

    #[test]
    fn large_numbers_scale_with_a_suffix() {
        assert_eq!(format_largenum(100_000_000, false), "  100000K");
        assert_eq!(format_largenum(1_000_000_000, false), "    1000M");
        assert_eq!(format_largenum(99_999_999_999, false), "   99999M");
        assert_eq!(format_largenum(100_000_000_000, false), "     100G");
        assert_eq!(format_largenum(100_000_000_000_000, false), "     100T");
    }

    #[test]
    fn exact_pads_to_digits_plus_one_at_least_nine() {
        assert_eq!(format_largenum(5, true), "        5");
        assert_eq!(format_largenum(1_234_567_890_123, true), " 1234567890123");
    }
}
