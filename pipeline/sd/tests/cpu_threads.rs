//! `setup_cpu_threads` in a process of its own: the calling thread joins rayon's global
//! pool, parallel work started on it runs, and work another thread hands to the pool
//! still runs while the caller waits outside rayon, even with one thread asked for.

use rayon::prelude::*;

fn main() {
    // SAFETY: first statement of main; no other thread has started.
    unsafe {
        std::env::set_var("RAYON_NUM_THREADS", "1");
        anchor_sd::setup_cpu_threads();
    }
    assert_eq!(
        rayon::current_thread_index(),
        Some(0),
        "the calling thread is not in rayon's pool"
    );
    assert!(
        rayon::current_num_threads() >= 2,
        "no background worker: {} thread(s)",
        rayon::current_num_threads()
    );
    let on_caller: u64 = (1..=1000u64).into_par_iter().sum();
    assert_eq!(on_caller, 500_500);
    // The caller blocks in `join`, outside rayon: a background worker must run this.
    let from_other_thread =
        std::thread::spawn(|| (1..=1000u64).into_par_iter().map(|x| x * 2).sum::<u64>())
            .join()
            .expect("the other thread panicked");
    assert_eq!(from_other_thread, 1_001_000);
    println!("cpu_threads: ok ({} threads)", rayon::current_num_threads());
}
