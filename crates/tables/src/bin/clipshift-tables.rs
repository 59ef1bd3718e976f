//! Checks on run directories, for people and scripts:
//!
//! - `clipshift-tables compare RUN_A RUN_B`: whether two runs hold the same results (every
//!   table as a multiset of rows). Exit 0 when they do, 1 with one line per difference.
//! - `clipshift-tables validate RUN`: every table's schema and values, and that the tables
//!   agree on their images. Exit 0 when valid, 1 with the file and the problem.
//! - `clipshift-tables rows TABLE`: the number of rows of a table (all its parts).

use clipshift_tables::{RunDir, compare_runs, count_rows, part_files, validate_run};

const USAGE: &str = "usage: clipshift-tables compare RUN_A RUN_B | validate RUN | rows TABLE";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let code = match args.as_slice() {
        ["compare", a, b] => match compare_runs(&RunDir::new(a), &RunDir::new(b)) {
            Ok(differences) if differences.is_empty() => {
                println!("{a} and {b} hold the same tables");
                0
            }
            Ok(differences) => {
                for d in &differences {
                    println!("{d}");
                }
                eprintln!("{a} and {b} differ in {} tables", differences.len());
                1
            }
            Err(err) => {
                eprintln!("error: {err}");
                1
            }
        },
        ["validate", run] => match validate_run(&RunDir::new(run)) {
            Ok(()) => {
                println!("{run}: every table is valid");
                0
            }
            Err(err) => {
                eprintln!("error: {err}");
                1
            }
        },
        ["rows", table] => match part_files(table.as_ref()).and_then(|files| count_rows(&files)) {
            Ok(rows) => {
                println!("{rows}");
                0
            }
            Err(err) => {
                eprintln!("error: {err}");
                1
            }
        },
        _ => {
            eprintln!("{USAGE}");
            2
        }
    };
    std::process::exit(code);
}
