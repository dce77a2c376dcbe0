//! README.md's "Try it" block, run as written against a real server: each line's
//! `cargo run -q --release --bin NAME -- ARGS` runs the built tool NAME with ARGS (the
//! test server's address in place of `:6510`, and `echo TEXT |` as its standard input),
//! and each tool's output is checked: every packet put is counted, `orbtail` prints them
//! all from the oldest and decodes every packet of a known type, `orbstat` names every
//! source. A line for a tool this test does not know fails it, so the README cannot grow
//! a command that nothing runs.

use std::collections::BTreeSet;

use orb_tests::harness::{run_tool, start_with};

/// What the README promises to a newcomer who has just started the server.
const README: &str = include_str!("../../README.md");

/// One command of the block: the tool, its arguments and its standard input.
#[derive(Debug)]
struct Command {
    line: String,
    tool: String,
    args: Vec<String>,
    stdin: Vec<u8>,
}

/// The shell lines of the first ```sh block after the "Try it" paragraph.
fn try_it_lines() -> Vec<String> {
    let after = README
        .split_once("\nTry it")
        .expect("README.md has a \"Try it\" paragraph")
        .1;
    let block = after
        .split_once("```sh\n")
        .and_then(|(_, rest)| rest.split_once("\n```"))
        .expect("a ```sh block follows \"Try it\"")
        .0;
    block
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

/// Reads `[echo TEXT |] cargo run -q --release --bin NAME -- ARGS`, the only form the
/// block uses; anything else fails the test with the line.
fn parse(line: &str, orb: &str) -> Command {
    let (stdin, cmd) = match line.split_once('|') {
        Some((echo, rest)) => {
            let text = echo
                .trim()
                .strip_prefix("echo ")
                .unwrap_or_else(|| panic!("only `echo TEXT |` may feed a command: {line}"));
            (format!("{}\n", text.trim()).into_bytes(), rest)
        }
        None => (Vec::new(), line),
    };
    let words: Vec<&str> = cmd.split_whitespace().collect();
    let prefix = ["cargo", "run", "-q", "--release", "--bin"];
    assert!(
        words.len() >= 7 && words[..5] == prefix && words[6] == "--",
        "not `cargo run -q --release --bin NAME -- ARGS`: {line}"
    );
    let args = words[7..]
        .iter()
        .map(|w| if *w == ":6510" { orb } else { w })
        .map(str::to_owned)
        .collect();
    Command {
        line: line.to_owned(),
        tool: words[5].to_owned(),
        args,
        stdin,
    }
}

/// The value after `flag` in `args`, parsed.
fn flag<T: std::str::FromStr>(args: &[String], flags: &[&str]) -> Option<T> {
    let i = args.iter().position(|a| flags.contains(&a.as_str()))?;
    args.get(i + 1)?.parse().ok()
}

#[test]
fn the_try_it_block_runs_as_written() {
    let lines = try_it_lines();
    assert!(
        lines.len() >= 3,
        "the Try it block has too few commands: {lines:?}"
    );
    let (_dir, srv) = start_with(&["--ring-size", "4MiB", "--flush", "none"]);
    let orb = srv.orb();
    // Packets put so far, and the srcnames they were put under.
    let mut put = 0u64;
    let mut sources = BTreeSet::new();
    for line in &lines {
        let c = parse(line, &orb);
        let (status, out, err) = run_tool(
            &c.args.iter().map(String::as_str).collect::<Vec<_>>(),
            &c.tool,
            &c.stdin,
        );
        let said = format!("`{}`:\nstdout:\n{out}\nstderr:\n{err}", c.line);
        assert!(status.success(), "{status} from {said}");
        assert!(!err.contains("error"), "an error from {said}");
        match c.tool.as_str() {
            "orbsim" => {
                // orbsim: put 8 packets (...) from 4 stations ...; pktids 1..=8
                let n: u64 = out
                    .strip_prefix("orbsim: put ")
                    .and_then(|r| r.split_whitespace().next())
                    .and_then(|n| n.parse().ok())
                    .unwrap_or_else(|| panic!("no summary line from {said}"));
                let rounds: u64 = flag(&c.args, &["--count", "-n"]).expect("--count");
                let stations = 4; // orbsim's default network: 3 seismic, 1 pressure
                assert_eq!(n, rounds * stations, "{said}");
                let last = put + n;
                assert!(
                    out.trim_end()
                        .ends_with(&format!("pktids {}..={last}", put + 1)),
                    "{said}"
                );
                put = last;
                sources.extend((1..=3).map(|i| format!("XX_STA{i:02}/MGENC/M40")));
                sources.insert("XX_PRS01/MGENC/M20".to_owned());
            }
            "orbput" => {
                put += 1;
                assert_eq!(out.trim(), put.to_string(), "the pktid from {said}");
                let name: String = flag(&c.args, &["--srcname"]).expect("--srcname");
                sources.insert(name);
            }
            "orbtail" => {
                let n: u64 = flag(&c.args, &["-n", "--count"]).expect("-n");
                assert_eq!(
                    n, put,
                    "orbtail should show every packet put before it: {said}"
                );
                let packets: Vec<&str> = out.lines().filter(|l| l.starts_with('#')).collect();
                let pktids: Vec<String> = packets
                    .iter()
                    .map(|l| l.split_whitespace().next().unwrap_or("").to_owned())
                    .collect();
                let want: Vec<String> = (1..=put).map(|i| format!("#{i}")).collect();
                assert_eq!(pktids, want, "{said}");
                assert!(!err.contains("cannot decode"), "{said}");
                // Every packet of a decoded type is followed by its channel lines.
                let channel_lines = out.lines().filter(|l| l.starts_with("  ")).count();
                let decoded = packets.iter().filter(|l| l.contains("/MGENC/")).count();
                assert!(
                    decoded > 0 && channel_lines >= decoded,
                    "{decoded} MGENC packets but {channel_lines} channel lines: {said}"
                );
            }
            "orbstat" => {
                for name in &sources {
                    assert!(out.contains(name.as_str()), "{name} missing from {said}");
                }
            }
            other => panic!(
                "tests/tests/readme.rs does not know how to check `{other}`: \
                 teach it, so the README's line `{}` is tested",
                c.line
            ),
        }
    }
    assert!(put > 0, "the Try it block put no packet");
}
