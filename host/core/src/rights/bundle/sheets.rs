//! The bundle's tables as CSV and XLSX: one table per system and record
//! kind, a header row (`record`, then each field in the order first seen),
//! one row per record. Cells a spreadsheet would read as a formula
//! (beginning with `=`, `+`, `-`, `@`, tab or CR) are neutralised: in CSV
//! by a leading `'` (what spreadsheets show as text), in XLSX by the cell's
//! quote-prefix attribute, which keeps the value intact.

use oubli_model::Exported;
use rust_xlsxwriter::{ExcelDateTime, Format, Workbook, XlsxError};

/// One table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Table {
    pub(crate) system: String,
    pub(crate) kind: String,
    pub(crate) header: Vec<String>,
    pub(crate) rows: Vec<Vec<String>>,
}

/// The tables of one system's records, by kind in order of appearance.
/// A field that appears twice in a record has its values joined by a
/// newline.
pub(crate) fn tables(system: &str, records: &[&Exported]) -> Vec<Table> {
    let mut out: Vec<Table> = Vec::new();
    for r in records {
        let i = match out.iter().position(|t| t.kind == r.reference.kind) {
            Some(i) => i,
            None => {
                out.push(Table {
                    system: system.to_string(),
                    kind: r.reference.kind.clone(),
                    header: vec!["record".into()],
                    rows: Vec::new(),
                });
                out.len() - 1
            }
        };
        let t = &mut out[i];
        for f in &r.fields {
            if !t.header.iter().skip(1).any(|h| h == &f.name) {
                t.header.push(f.name.clone());
            }
        }
        let mut row = vec![String::new(); t.header.len()];
        row[0] = r.reference.id.clone();
        for f in &r.fields {
            let col = t.header.iter().position(|h| h == &f.name).unwrap_or(0);
            if row[col].is_empty() {
                row[col] = f.value.clone();
            } else {
                row[col].push('\n');
                row[col].push_str(&f.value);
            }
        }
        t.rows.push(row);
    }
    for t in &mut out {
        let width = t.header.len();
        for row in &mut t.rows {
            row.resize(width, String::new());
        }
    }
    out
}

/// Whether a spreadsheet would take this cell for a formula.
pub(crate) fn risky(cell: &str) -> bool {
    cell.starts_with(['=', '+', '-', '@', '\t', '\r'])
}

/// The cell as written to CSV.
pub(crate) fn csv_cell(cell: &str) -> String {
    if risky(cell) {
        format!("'{cell}")
    } else {
        cell.to_string()
    }
}

/// A table as CSV (RFC 4180: quoted where needed, CRLF rows, UTF-8).
pub(crate) fn csv(t: &Table) -> Result<Vec<u8>, csv::Error> {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    w.write_record(t.header.iter().map(|h| csv_cell(h)))?;
    for row in &t.rows {
        w.write_record(row.iter().map(|c| csv_cell(c)))?;
    }
    w.into_inner().map_err(|e| e.into_error().into())
}

/// A date or date-time the spreadsheet should show as one: `YYYY-MM-DD`,
/// optionally `THH:MM[:SS[.fff]]`, optionally `Z` (UTC). Anything else
/// (offsets, epoch numbers) stays text.
pub(crate) fn as_date(cell: &str) -> Option<ExcelDateTime> {
    let b = cell.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|s| s.iter().all(u8::is_ascii_digit));
    let date = b.len() >= 10
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10);
    if !date {
        return None;
    }
    let rest = cell[10..].strip_suffix('Z').unwrap_or(&cell[10..]);
    if !rest.is_empty() {
        let t = rest.strip_prefix('T').or_else(|| rest.strip_prefix(' '))?;
        let tb = t.as_bytes();
        let ok = tb.len() >= 5
            && tb[..2].iter().all(u8::is_ascii_digit)
            && tb[2] == b':'
            && tb[3..5].iter().all(u8::is_ascii_digit)
            && (tb.len() == 5
                || (tb.len() >= 8
                    && tb[5] == b':'
                    && tb[6..8].iter().all(u8::is_ascii_digit)
                    && (tb.len() == 8
                        || (tb[8] == b'.'
                            && tb.len() > 9
                            && tb[9..].iter().all(u8::is_ascii_digit)))));
        if !ok {
            return None;
        }
    }
    ExcelDateTime::parse_from_str(cell.trim_end_matches('Z')).ok()
}

/// A sheet name Excel accepts: at most 31 characters, none of `[]:*?/\`,
/// unique in the workbook.
fn sheet_name(t: &Table, taken: &mut Vec<String>) -> String {
    let base: String = format!("{}-{}", t.system, t.kind)
        .chars()
        .map(|c| if "[]:*?/\\'".contains(c) { '_' } else { c })
        .take(31)
        .collect();
    let mut name = base.clone();
    let mut n = 2;
    while taken.iter().any(|x| x.eq_ignore_ascii_case(&name)) {
        let suffix = format!("~{n}");
        name = base.chars().take(31 - suffix.len()).collect::<String>() + &suffix;
        n += 1;
    }
    taken.push(name.clone());
    name
}

/// Every table as one workbook: a sheet each, bold frozen header row,
/// widths from the content (capped), dates as dates.
pub(crate) fn xlsx(tables: &[Table]) -> Result<Vec<u8>, XlsxError> {
    let mut book = Workbook::new();
    let bold = Format::new().set_bold();
    let quoted = Format::new().set_quote_prefix();
    let date = Format::new().set_num_format("yyyy-mm-dd");
    let datetime = Format::new().set_num_format("yyyy-mm-dd hh:mm:ss");
    let mut taken = Vec::new();
    if tables.is_empty() {
        book.add_worksheet().set_name("data")?;
    }
    for t in tables {
        let sheet = book.add_worksheet();
        sheet.set_name(sheet_name(t, &mut taken))?;
        let mut widths: Vec<usize> = t.header.iter().map(|h| h.chars().count()).collect();
        for (c, h) in t.header.iter().enumerate() {
            sheet.write_string_with_format(0, c as u16, h, &bold)?;
        }
        for (r, row) in t.rows.iter().enumerate() {
            let r = r as u32 + 1;
            for (c, cell) in row.iter().enumerate() {
                let col = c as u16;
                widths[c] =
                    widths[c].max(cell.lines().map(|l| l.chars().count()).max().unwrap_or(0));
                if let Some(d) = as_date(cell) {
                    let f = if cell.len() > 10 { &datetime } else { &date };
                    sheet.write_datetime_with_format(r, col, d, f)?;
                } else if risky(cell) {
                    sheet.write_string_with_format(r, col, cell, &quoted)?;
                } else {
                    sheet.write_string(r, col, cell)?;
                }
            }
        }
        for (c, w) in widths.iter().enumerate() {
            sheet.set_column_width(c as u16, (*w as f64 + 2.0).clamp(8.0, 60.0))?;
        }
        sheet.set_freeze_panes(1, 0)?;
    }
    book.save_to_buffer()
}

#[cfg(test)]
mod tests {
    use super::*;
    use oubli_model::{Field, RecordRef};

    fn rec(kind: &str, id: &str, fields: &[(&str, &str)]) -> Exported {
        Exported {
            reference: RecordRef {
                kind: kind.into(),
                id: id.into(),
            },
            fields: fields
                .iter()
                .map(|(n, v)| Field {
                    name: n.to_string(),
                    category: "contact".into(),
                    value: v.to_string(),
                })
                .collect(),
            attachments: vec![],
        }
    }

    #[test]
    fn records_become_one_table_per_kind() {
        let a = rec(
            "contact",
            "c1",
            &[("email", "a@example.com"), ("phone", "+33 6")],
        );
        let b = rec(
            "contact",
            "c2",
            &[("notes", "x"), ("phone", "1"), ("phone", "2")],
        );
        let c = rec("call", "k1", &[("ani", "+336")]);
        let t = tables("crm", &[&a, &b, &c]);
        assert_eq!(t.len(), 2);
        assert_eq!(t[0].header, ["record", "email", "phone", "notes"]);
        assert_eq!(t[0].rows[0], ["c1", "a@example.com", "+33 6", ""]);
        assert_eq!(t[0].rows[1], ["c2", "", "1\n2", "x"]);
        assert_eq!(t[1].kind, "call");
    }

    #[test]
    fn formulas_are_neutralised_and_dates_recognised() {
        for c in ["=1+1", "+33", "-2", "@SUM(A1)", "\tx", "\rx"] {
            assert!(risky(c));
            assert!(csv_cell(c).starts_with('\''));
        }
        assert!(!risky("a=b") && csv_cell("plain") == "plain");
        assert!(as_date("2026-12-02").is_some());
        assert!(as_date("2026-12-02T03:10:45Z").is_some());
        assert!(as_date("2026-12-02T03:10:45.123").is_some());
        assert!(as_date("2026-12-02 03:10").is_some());
        for no in [
            "2026-12-02T03:10:45+01:00",
            "1796185845123",
            "2026-1-2",
            "2026-12-02x",
            "2026-12-02T3:10",
        ] {
            assert!(as_date(no).is_none(), "{no}");
        }
    }

    #[test]
    fn csv_and_xlsx_round_trip_and_neutralise_formulas() {
        use calamine::{Data, Reader};
        let nasty = [
            "=HYPERLINK(\"http://evil.example\",\"x\")",
            "+33 6 12 34 56 78",
            "-1",
            "@SUM(A1)",
            "\tindented",
            "Zoë, \"quoted\"\nsecond line — 日本語 🙂",
            "2026-12-02T03:10:45Z",
            "plain",
        ];
        let fields: Vec<(&str, &str)> = nasty
            .iter()
            .enumerate()
            .map(|(i, v)| (["a", "b", "c", "d", "e", "f", "g", "h"][i], *v))
            .collect();
        let r = rec("contact", "c,1", &fields);
        let t = tables("crm", &[&r]);

        // CSV: parsed back, the same text, formulas behind a quote.
        let bytes = csv(&t[0]).unwrap();
        let mut rd = ::csv::Reader::from_reader(&bytes[..]);
        let row = rd.records().next().unwrap().unwrap();
        assert_eq!(&row[0], "c,1");
        for (i, v) in nasty.iter().enumerate() {
            let got = &row[i + 1];
            if risky(v) {
                assert_eq!(got, format!("'{v}"));
            } else {
                assert_eq!(got, *v);
            }
        }

        // XLSX: the value intact, never a formula; the date a date.
        let bytes = xlsx(&t).unwrap();
        let mut book: calamine::Xlsx<_> =
            calamine::open_workbook_from_rs(std::io::Cursor::new(bytes)).unwrap();
        assert_eq!(book.sheet_names(), ["crm-contact"]);
        let range = book.worksheet_range("crm-contact").unwrap();
        assert_eq!(range.get((0, 0)), Some(&Data::String("record".into())));
        assert_eq!(range.get((1, 0)), Some(&Data::String("c,1".into())));
        for (i, v) in nasty.iter().enumerate() {
            let cell = range.get((1, i + 1)).unwrap();
            if v.starts_with("2026-") {
                assert!(matches!(cell, Data::DateTime(_)), "{cell:?}");
            } else {
                assert_eq!(cell, &Data::String(v.to_string()), "column {i}");
            }
        }
        let formulas = book.worksheet_formula("crm-contact").unwrap();
        assert!(
            formulas.used_cells().all(|(_, _, f)| f.is_empty()),
            "no cell is a formula"
        );
    }

    #[test]
    fn sheet_names_are_valid_and_unique() {
        let t = |s: &str, k: &str| Table {
            system: s.into(),
            kind: k.into(),
            header: vec![],
            rows: vec![],
        };
        let mut taken = Vec::new();
        let a = sheet_name(
            &t("a-very-long-system-name-indeed", "conversation"),
            &mut taken,
        );
        let b = sheet_name(
            &t("a-very-long-system-name-indeed", "conversation-2"),
            &mut taken,
        );
        assert_eq!(a.chars().count(), 31);
        assert!(b.chars().count() <= 31 && a != b, "{a} {b}");
        assert_eq!(sheet_name(&t("x", "a/b:c"), &mut taken), "x-a_b_c");
    }
}
