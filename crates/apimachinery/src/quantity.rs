//! Kubernetes resource quantities (`100m`, `1.5Gi`, `2e3`) as exact
//! thousandths, for comparisons (LimitRanger, quota, scheduling).

/// The quantity in thousandths of a unit, rounded up (as upstream rounds
/// to milli precision); None when it is not a quantity.
pub fn parse_milli(text: &str) -> Option<i128> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    let (sign, text) = match text.strip_prefix('-') {
        Some(rest) => (-1, rest),
        None => (1, text.strip_prefix('+').unwrap_or(text)),
    };
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(split);
    if number.is_empty() || number == "." {
        return None;
    }
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if fraction.contains('.') {
        return None;
    }
    // Value as an integer over 10^fraction_digits.
    let digits = format!("{whole}{fraction}");
    let mantissa: i128 = digits.parse().ok()?;
    let scale = 10i128.checked_pow(fraction.len() as u32)?;
    // Multiplier as numerator/denominator of the unit, times 1000.
    let (num, den): (i128, i128) = match suffix {
        "n" => (1, 1_000_000),
        "u" => (1, 1_000),
        "m" => (1, 1),
        "" => (1_000, 1),
        "k" => (1_000_000, 1),
        "M" => (1_000_000_000, 1),
        "G" => (1_000_000_000_000, 1),
        "T" => (1_000_000_000_000_000, 1),
        "P" => (1_000_000_000_000_000_000, 1),
        "E" => (1_000_000_000_000_000_000_000, 1),
        "Ki" => (1_024_000, 1),
        "Mi" => (1_024 * 1_024_000, 1),
        "Gi" => (1_024 * 1_024 * 1_024_000, 1),
        "Ti" => (1_024i128.pow(3) * 1_024_000, 1),
        "Pi" => (1_024i128.pow(4) * 1_024_000, 1),
        "Ei" => (1_024i128.pow(5) * 1_024_000, 1),
        s if s.starts_with(['e', 'E']) => {
            let exp: i32 = s[1..].parse().ok()?;
            if !(-9..=18).contains(&exp) {
                return None;
            }
            if exp >= 0 {
                (1_000 * 10i128.pow(exp as u32), 1)
            } else {
                (1_000, 10i128.pow((-exp) as u32))
            }
        }
        _ => return None,
    };
    let numerator = mantissa.checked_mul(num)?;
    let denominator = scale.checked_mul(den)?;
    // Round up to whole thousandths.
    let value = (numerator + denominator - 1) / denominator;
    Some(sign * value)
}

/// Render thousandths the way upstream prints a canonical quantity for
/// messages (`100m`, `2`, `1536Mi` stays as given elsewhere).
pub fn format_milli(milli: i128) -> String {
    if milli % 1000 == 0 {
        format!("{}", milli / 1000)
    } else {
        format!("{milli}m")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffixes_and_exponents_parse_to_thousandths() {
        assert_eq!(parse_milli("100m"), Some(100));
        assert_eq!(parse_milli("1"), Some(1000));
        assert_eq!(parse_milli("1.5"), Some(1500));
        assert_eq!(parse_milli("2k"), Some(2_000_000));
        assert_eq!(parse_milli("1Ki"), Some(1_024_000));
        assert_eq!(parse_milli("1Gi"), Some(1_073_741_824_000));
        assert_eq!(parse_milli("128Mi"), Some(134_217_728_000));
        assert_eq!(parse_milli("1e3"), Some(1_000_000));
        assert_eq!(parse_milli("1n"), Some(1));
        assert_eq!(parse_milli("-1"), Some(-1000));
        assert_eq!(parse_milli("abc"), None);
        assert_eq!(parse_milli("1Qi"), None);
        assert_eq!(parse_milli(""), None);
    }
}
