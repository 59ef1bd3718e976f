//! `clipshift-tables compare RUN_A RUN_B`: whether two runs hold the same results (every
//! table as a multiset of rows). Exit status 0 when they do, 1 with one line per difference.

use clipshift_tables::{RunDir, compare_runs};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [command, a, b] = args.as_slice() else {
        eprintln!("usage: clipshift-tables compare RUN_A RUN_B");
        std::process::exit(2);
    };
    if command != "compare" {
        eprintln!("unknown command `{command}`; usage: clipshift-tables compare RUN_A RUN_B");
        std::process::exit(2);
    }
    match compare_runs(&RunDir::new(a), &RunDir::new(b)) {
        Ok(differences) if differences.is_empty() => println!("{a} and {b} hold the same tables"),
        Ok(differences) => {
            for d in &differences {
                println!("{d}");
            }
            eprintln!("{a} and {b} differ in {} tables", differences.len());
            std::process::exit(1);
        }
        Err(err) => {
            eprintln!("error: {err}");
            std::process::exit(1);
        }
    }
}
