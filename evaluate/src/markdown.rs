//! Markdown tables, as `evaluate` prints them (reports and `--compare`).

use std::fmt::{Display, Write as _};

/// The header row and its `| --- |` rule.
pub fn header<'a>(out: &mut String, names: impl IntoIterator<Item = &'a str>) {
    let mut columns = 0;
    row(out, names.into_iter().inspect(|_| columns += 1));
    row(out, std::iter::repeat_n("---", columns));
}

/// One row: `| a | b |`.
pub fn row(out: &mut String, cells: impl IntoIterator<Item = impl Display>) {
    out.push('|');
    for cell in cells {
        let _ = write!(out, " {cell} |");
    }
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_and_rule() {
        let mut out = String::new();
        header(&mut out, ["model", "RMSE"]);
        row(&mut out, ["svd", "0.8700"]);
        assert_eq!(out, "| model | RMSE |\n| --- | --- |\n| svd | 0.8700 |\n");
    }
}
