//! The T+1 day file checker (sign-up, order and clearing files) on any bytes: it never panics,
//! it hands every record of a file it accepts to its callback in order, and what our writer
//! makes of the header and those records is accepted again, the same.

#![no_main]

use libfuzzer_sys::fuzz_target;
use formats::recon::{DayFileKind, DayHeader, DayRecord, check_day_file};

fuzz_target!(|data: &[u8]| {
    // The kind and date come from the file's own header, when it names one.
    let first = data.split(|b| *b == b'\n').next().unwrap_or_default();
    let first = String::from_utf8_lossy(first);
    for &kind in DayFileKind::ALL {
        let Ok(h) = DayHeader::parse(kind, first.trim_end_matches('\r')) else {
            continue;
        };
        let mut records = Vec::new();
        let Ok(Ok(header)) = check_day_file(data, kind, h.business_date, |r| {
            records.push(r);
            Ok::<(), ()>(())
        }) else {
            continue;
        };
        assert_eq!(records.len() as u64, header.figures.records);
        let mut again = header.to_line();
        again.push('\n');
        for r in &records {
            again += &r.to_line();
            again.push('\n');
        }
        let mut seen = Vec::new();
        let reread = check_day_file(again.as_bytes(), kind, h.business_date, |r| {
            seen.push(r);
            Ok::<(), ()>(())
        });
        assert_eq!(reread.expect("written back"), Ok(header.clone()));
        assert_eq!(seen, records);
        assert_eq!(DayHeader::parse(kind, &header.to_line()).expect("header"), header);
        for (i, r) in records.iter().enumerate() {
            let no = i as u64 + 2;
            assert_eq!(&DayRecord::parse(kind, no, &r.to_line()).expect("record"), r);
        }
    }
});
