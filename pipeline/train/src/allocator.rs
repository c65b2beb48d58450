//! How the training binaries (`anchor`, the bench) set up their allocator, mimalloc.

/// mimalloc's `mi_option_purge_delay` (`mimalloc.h`): milliseconds before freed pages are
/// returned to the OS; -1 never returns them.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Keeps the pages mimalloc frees instead of returning them to the OS. A training step frees
/// and reallocates every activation, and a returned page comes back zeroed by the kernel on
/// its next use: `clear_page` was about a tenth of a small training step. The kept pages are
/// the ones the next step reuses, so peak memory grows only by what one step frees.
pub fn keep_freed_pages() {
    // SAFETY: sets one integer option, which mimalloc stores and reads atomically.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
}
