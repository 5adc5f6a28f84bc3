//! Sizes from the host's facts (pure): the cores and memory the probe reports (`@host`), and the
//! size of a PHP-FPM worker measured on the host. Each result carries the sentence that says why,
//! which the rendered config keeps as a comment, so `plan` shows the value and its reason together.
//! Without facts (`render`, the first pass before the probe), the stock values stand.

/// What the probe says of the machine: `@host CORES MEM_KIB`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostSize {
    pub cores: u32,
    pub mem_mib: u64,
}

impl HostSize {
    /// From the probe's `host` lines (`CORES MEM_KIB`).
    pub fn parse(lines: &[String]) -> Option<HostSize> {
        let mut it = lines.first()?.split_whitespace();
        let cores: u32 = it.next()?.parse().ok().filter(|c| *c > 0)?;
        let kib: u64 = it.next()?.parse().ok().filter(|m| *m > 0)?;
        Some(HostSize {
            cores,
            mem_mib: kib / 1024,
        })
    }
}

/// A worker's size when none runs to be measured (a first apply): PHP 8 with opcache and a
/// framework's autoloader.
pub const WORKER_MIB_DEFAULT: u64 = 48;
/// Bounds of `pm.max_children`: a pool too small to serve, or one whose workers would thrash.
pub const CHILDREN_MIN: u64 = 5;
pub const CHILDREN_MAX: u64 = 256;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhpWorkers {
    /// Workers start when requests come and stop when idle (a pool that shares its host with
    /// other sites' pools), instead of a few always waiting.
    pub ondemand: bool,
    pub max_children: u64,
    pub start_servers: u64,
    pub min_spare: u64,
    pub max_spare: u64,
    pub why: String,
}

/// The average resident size of the pool's workers, in MiB, from `ps -o user=,rss=` lines (the
/// master runs as root and is left out), rounded up to 8 MiB so that small drifts do not move it.
pub fn worker_mib(ps: &[String], user: &str) -> Option<u64> {
    let sizes: Vec<u64> = ps
        .iter()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            (f.next()? == user).then(|| f.next()?.parse::<u64>().ok())?
        })
        .collect();
    if sizes.is_empty() {
        return None;
    }
    let avg_kib = sizes.iter().sum::<u64>() / sizes.len() as u64;
    Some(avg_kib.div_ceil(1024).div_ceil(8) * 8)
}

/// How many PHP workers a host holds (PHP-FPM's `pm.max_children`, Apache's prefork
/// `MaxRequestWorkers` with mod_php), from the memory PHP may take (half of it on a web host that
/// also runs the database, 3/4 otherwise) and the size of a worker. `current`: the value the host
/// has, with the reason written beside it; both are kept when the new value is within 20 % of it,
/// so a worker that grew or shrank a little does not change the config (and reload the pool) on
/// every apply.
pub fn php_workers(
    size: Option<HostSize>,
    worker: Option<u64>,
    with_db: bool,
    current: Option<(u64, Option<String>)>,
) -> PhpWorkers {
    let Some(size) = size else {
        return spares(
            10,
            1,
            "stock size: the host's memory is not known yet".into(),
        );
    };
    let (pct, whose) = if with_db {
        (50, "half of it, as MariaDB runs here too")
    } else {
        (75, "3/4 of it")
    };
    let (worker_mib, measured) = match worker {
        Some(w) => (w.max(8), "measured: the pool's workers now"),
        None => (WORKER_MIB_DEFAULT, "estimated: no worker runs yet"),
    };
    let budget = size.mem_mib * pct / 100;
    let derived = (budget / worker_mib).clamp(CHILDREN_MIN, CHILDREN_MAX);
    if let Some((c, why)) = current {
        if c > 0 && derived.abs_diff(c) * 5 <= c {
            let why = why.unwrap_or_else(|| format!("kept: {derived} is within 20 % of it"));
            return spares(c, size.cores, why);
        }
    }
    spares(
        derived,
        size.cores,
        format!(
            "{} MiB of memory, {whose}: {budget} MiB / {worker_mib} MiB per worker ({measured}) = {derived}, within {CHILDREN_MIN}..{CHILDREN_MAX}",
            size.mem_mib
        ),
    )
}

/// The value a rendered config has for `key` (a line that starts with it, spaces before it
/// ignored) and the reason written on the line above it after `comment`: what `fpm` keeps.
pub fn kept(text: &str, key: &str, comment: &str) -> Option<(u64, Option<String>)> {
    let lines: Vec<&str> = text.lines().map(str::trim_start).collect();
    let i = lines.iter().position(|l| l.starts_with(key))?;
    let n = lines[i][key.len()..].trim().parse().ok()?;
    let why = i
        .checked_sub(1)
        .and_then(|j| lines[j].strip_prefix(comment))
        .map(str::to_string);
    Some((n, why))
}

/// One site's pool on a host whose PHP workers `sites` pools share: its share of what the host
/// holds (`total`, sized without a kept value), at least one, on demand, so an idle site holds no
/// worker and the pools together never hold more than the host's memory takes (unless there are
/// more sites than that: then one each, and the reason says so). `current` as in `php_workers`.
pub fn php_share(
    total: &PhpWorkers,
    sites: u64,
    current: Option<(u64, Option<String>)>,
) -> PhpWorkers {
    let sites = sites.max(1);
    let share = (total.max_children / sites).max(1);
    let pool = |max_children: u64, why: String| PhpWorkers {
        ondemand: true,
        max_children,
        start_servers: 0,
        min_spare: 0,
        max_spare: 0,
        why,
    };
    if let Some((c, why)) = current {
        if c > 0 && share.abs_diff(c) * 5 <= c {
            return pool(
                c,
                why.unwrap_or_else(|| format!("kept: {share} is within 20 % of it")),
            );
        }
    }
    let over = if total.max_children < sites {
        " (more sites than the memory holds workers for: one each)"
    } else {
        ""
    };
    pool(
        share,
        format!(
            "{}; shared by the {sites} sites of this host: {} / {sites} = {share}{over}, started on demand",
            total.why, total.max_children
        ),
    )
}

/// Idle workers by the cores (what can run at once), not by the ceiling: a large machine's pool
/// starts small and grows with its load.
fn spares(children: u64, cores: u32, why: String) -> PhpWorkers {
    let cores = u64::from(cores.max(1));
    let max_spare = (4 * cores).clamp(3, children);
    PhpWorkers {
        ondemand: false,
        max_children: children,
        start_servers: (2 * cores).clamp(2, max_spare),
        min_spare: cores.clamp(1, max_spare),
        max_spare,
        why,
    }
}

/// InnoDB's buffer pool: most of the memory on a database host of its own (60 %), a fifth when it
/// shares the host with the web stack; in 128 MiB steps (InnoDB's chunk), at least 128 MiB.
pub fn buffer_pool(size: Option<HostSize>, dedicated: bool) -> (u64, String) {
    let Some(size) = size else {
        return (128, "stock size: the host's memory is not known yet".into());
    };
    let (pct, whose) = if dedicated {
        (60, "60 % on a database host of its own")
    } else {
        (20, "20 % on a host it shares with the web stack")
    };
    let mib = (size.mem_mib * pct / 100 / 128 * 128).max(128);
    (
        mib,
        format!("{} MiB of memory, {whose}, in 128 MiB steps", size.mem_mib),
    )
}

/// Nginx's worker processes: one per core.
pub fn nginx_workers(size: Option<HostSize>) -> (String, String) {
    match size {
        Some(s) => (
            s.cores.to_string(),
            format!("one per core: the host has {}", s.cores),
        ),
        None => (
            "auto".into(),
            "one per core (the host's cores are not known yet)".into(),
        ),
    }
}

/// opcache for an application of `files` PHP files, `bytes` of PHP source in all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opcache {
    pub memory_mib: u64,
    pub interned_mib: u64,
    pub max_files: u64,
    pub why: String,
}

/// Sized from the release: room for twice the PHP files it has (later releases grow; opcache
/// rounds the count up to a prime of its own), at least PHP's 10000; memory for twice its source
/// (compiled code and its strings take about that, measured with WordPress 6: 26 MiB of source, 31
/// MiB used), plus 64 MiB of headroom, in 32 MiB steps; interned strings an eighth of it.
pub fn opcache(files: u64, bytes: u64) -> Opcache {
    let max_files = (files * 2).clamp(10_000, 1_000_000);
    let mib = 1024 * 1024;
    let memory_mib = ((bytes * 2).div_ceil(mib) + 64).div_ceil(32) * 32;
    let memory_mib = memory_mib.min(4096);
    Opcache {
        memory_mib,
        interned_mib: (memory_mib / 8).max(8),
        max_files,
        why: format!(
            "the release has {files} PHP files, {} KiB: room for twice as many files and twice the source, plus 64 MiB",
            bytes.div_ceil(1024)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opcache_follows_the_release() {
        let small = opcache(1, 3000);
        assert_eq!(
            (small.memory_mib, small.interned_mib, small.max_files),
            (96, 12, 10_000)
        );
        // A WordPress-sized release: 1,700 files, 26 MiB of PHP.
        let wp = opcache(1700, 26 * 1024 * 1024);
        assert_eq!(
            (wp.memory_mib, wp.interned_mib, wp.max_files),
            (128, 16, 10_000)
        );
        let big = opcache(40_000, 300 * 1024 * 1024);
        assert_eq!((big.memory_mib, big.max_files), (672, 80_000));
        assert!(big.why.contains("40000 PHP files"), "{}", big.why);
    }

    const BIG: Option<HostSize> = Some(HostSize {
        cores: 4,
        mem_mib: 8192,
    });

    #[test]
    fn children_follow_memory_and_the_worker_size() {
        let f = php_workers(BIG, Some(64), false, None);
        assert_eq!(f.max_children, 8192 * 75 / 100 / 64);
        assert!(f.why.contains("measured"), "{}", f.why);
        let shared = php_workers(BIG, Some(64), true, None);
        assert_eq!(shared.max_children, 64);
        // Spares by the cores: 4 cores start 8, keep 4 to 16 idle.
        assert_eq!(
            (shared.start_servers, shared.min_spare, shared.max_spare),
            (8, 4, 16)
        );
        // Without a measurement: the estimate; without facts: the stock 10.
        assert_eq!(php_workers(BIG, None, true, None).max_children, 4096 / 48);
        assert_eq!(php_workers(None, None, true, None).max_children, 10);
        // Bounded both ways.
        let tiny = Some(HostSize {
            cores: 1,
            mem_mib: 256,
        });
        assert_eq!(
            php_workers(tiny, Some(128), true, None).max_children,
            CHILDREN_MIN
        );
        let huge = Some(HostSize {
            cores: 64,
            mem_mib: 1 << 20,
        });
        assert_eq!(
            php_workers(huge, Some(8), false, None).max_children,
            CHILDREN_MAX
        );
    }

    #[test]
    fn a_value_within_a_fifth_is_kept() {
        let kept = php_workers(BIG, Some(64), true, Some((60, Some("as before".into()))));
        assert_eq!((kept.max_children, kept.why.as_str()), (60, "as before"));
        assert_eq!(
            php_workers(BIG, Some(64), true, Some((40, None))).max_children,
            64
        );
    }

    #[test]
    fn the_value_a_config_has_is_read_with_its_reason() {
        let pool = "[foobar]\n; 3961 MiB of memory\npm.max_children = 41\n";
        assert_eq!(
            kept(pool, "pm.max_children = ", "; "),
            Some((41, Some("3961 MiB of memory".into())))
        );
        let site = "<IfModule mpm_prefork_module>\n    # why\n    MaxRequestWorkers 12\n";
        assert_eq!(
            kept(site, "MaxRequestWorkers ", "# "),
            Some((12, Some("why".into())))
        );
        assert_eq!(
            kept("MaxRequestWorkers 12\n", "MaxRequestWorkers ", "# "),
            Some((12, None))
        );
        assert_eq!(kept("nothing\n", "MaxRequestWorkers ", "# "), None);
    }

    #[test]
    fn workers_are_measured_without_the_master() {
        let ps: Vec<String> = ["root 30000", "www-data 40000", "www-data 50000", "bad"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        // (40000 + 50000) / 2 KiB = 44 MiB, rounded up to 48.
        assert_eq!(worker_mib(&ps, "www-data"), Some(48));
        assert_eq!(worker_mib(&ps[..1], "www-data"), None);
    }

    #[test]
    fn the_buffer_pool_takes_more_on_a_database_host_of_its_own() {
        assert_eq!(buffer_pool(BIG, true).0, 4864);
        assert_eq!(buffer_pool(BIG, false).0, 1536);
        assert_eq!(
            buffer_pool(
                Some(HostSize {
                    cores: 1,
                    mem_mib: 300
                }),
                false
            )
            .0,
            128
        );
        assert_eq!(
            HostSize::parse(&["2 24576000".into()]),
            Some(HostSize {
                cores: 2,
                mem_mib: 24000
            })
        );
    }
}
