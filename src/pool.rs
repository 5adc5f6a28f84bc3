//! Hosts worked on at once, at most `forks` of them (`--forks`): a fixed set of worker threads
//! that take the next host as they finish one. A worker whose job panics reports that host as
//! failed and goes on with the next.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// Runs `f` on every item with at most `forks` at once; results in the items' order.
/// `on_panic(i)` stands for the result of an item whose job panicked.
pub fn run<T: Send, R: Send>(
    items: Vec<T>,
    forks: usize,
    f: &(dyn Fn(T) -> R + Sync),
    on_panic: &(dyn Fn(usize) -> R + Sync),
) -> Vec<R> {
    let n = items.len();
    let todo: Mutex<Vec<Option<T>>> = Mutex::new(items.into_iter().map(Some).collect());
    let done: Mutex<Vec<Option<R>>> = Mutex::new((0..n).map(|_| None).collect());
    let next = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..forks.clamp(1, n.max(1)) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= n {
                    break;
                }
                let item = todo.lock().map(|mut t| t[i].take()).ok().flatten();
                let Some(item) = item else { break };
                let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(item)))
                    .unwrap_or_else(|_| on_panic(i));
                if let Ok(mut d) = done.lock() {
                    d[i] = Some(r);
                }
            });
        }
    });
    done.into_inner()
        .unwrap_or_default()
        .into_iter()
        .enumerate()
        .map(|(i, r)| r.unwrap_or_else(|| on_panic(i)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_more_than_forks_run_at_once_and_results_keep_their_order() {
        let running = AtomicUsize::new(0);
        let most = AtomicUsize::new(0);
        let out = run(
            (0..40).collect(),
            7,
            &|i: usize| {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                std::thread::sleep(std::time::Duration::from_millis(5));
                running.fetch_sub(1, Ordering::SeqCst);
                i * 2
            },
            &|_| usize::MAX,
        );
        assert_eq!(out, (0..40).map(|i| i * 2).collect::<Vec<_>>());
        assert!(most.load(Ordering::SeqCst) <= 7);
        assert!(most.load(Ordering::SeqCst) > 1);
    }

    #[test]
    fn a_job_that_panics_is_a_failed_item_and_the_others_go_on() {
        let out = run(
            vec![1, 2, 3],
            2,
            &|i: i32| {
                if i == 2 {
                    panic!("boom");
                }
                i
            },
            &|_| -1,
        );
        assert_eq!(out, [1, -1, 3]);
    }
}
