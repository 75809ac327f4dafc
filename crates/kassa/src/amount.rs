//! Human amounts (`12.5 USDK`) ↔ base units, exactly (decimal strings, no floats).

use anyhow::{Result, bail};

/// Parses `"12.5"` or `"12.5 USDK"` into base units of an asset with `decimals` decimals.
/// Returns the symbol if one was written.
pub fn parse(text: &str, decimals: u8) -> Result<(u64, Option<String>)> {
    let mut parts = text.split_whitespace();
    let number = parts.next().unwrap_or("");
    let symbol = parts.next().map(str::to_string);
    if parts.next().is_some() || number.is_empty() {
        bail!("write amounts as NUMBER [SYMBOL], e.g. \"12.5 USDK\"");
    }
    let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && frac.is_empty()
        || !whole
            .bytes()
            .chain(frac.bytes())
            .all(|b| b.is_ascii_digit())
    {
        bail!("{number:?} is not a decimal number");
    }
    if frac.len() > usize::from(decimals) {
        bail!("{number:?} has more than {decimals} decimals");
    }
    let mut digits = format!("{whole}{frac}");
    digits.extend(std::iter::repeat_n('0', usize::from(decimals) - frac.len()));
    let digits = digits.trim_start_matches('0');
    if digits.is_empty() {
        return Ok((0, symbol));
    }
    match digits.parse::<u64>() {
        Ok(v) => Ok((v, symbol)),
        Err(_) => bail!("{number:?} is too large"),
    }
}

/// Formats base units with `decimals` decimals, trimming trailing zeros.
pub fn format(units: u128, decimals: u8) -> String {
    let d = usize::from(decimals);
    let s = format!("{units:0>width$}", width = d + 1);
    let (whole, frac) = s.split_at(s.len() - d);
    let frac = frac.trim_end_matches('0');
    if frac.is_empty() {
        whole.to_string()
    } else {
        format!("{whole}.{frac}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_amounts_parse_exactly_and_format_back() {
        assert_eq!(parse("12.5 USDK", 2).unwrap(), (1250, Some("USDK".into())));
        assert_eq!(parse("0.000001", 6).unwrap().0, 1);
        assert_eq!(parse("7", 0).unwrap().0, 7);
        assert_eq!(parse("100", 6).unwrap().0, 100_000_000);
        assert!(parse("1.234", 2).is_err(), "too many decimals");
        assert!(parse("1e5", 2).is_err());
        assert!(parse("-1", 2).is_err());
        assert!(
            parse("99999999999999999999", 0).is_err(),
            "overflow is an error, not a wrap"
        );
        assert_eq!(format(1250, 2), "12.5");
        assert_eq!(format(1, 6), "0.000001");
        assert_eq!(format(100_000_000, 6), "100");
    }
}
