//! Big zero-initialised arrays for the connection table, allocated once.
//!
//! On Linux the memory is mapped anonymously, aligned to 2 MiB and marked
//! `MADV_HUGEPAGE`, so that a table of a million connections sits on a
//! few dozen huge pages instead of tens of thousands of 4 KiB pages: a
//! random lookup then costs cache misses without TLB misses on top. The
//! advice is only advice; without transparent huge pages the array works
//! the same, on small pages. Elsewhere the global allocator is used.

use std::ops::Deref;
use std::ptr::NonNull;

/// Types for which all-zero bytes are a valid value and which need no
/// drop: the atomics and the structs made only of them.
///
/// # Safety
/// Implement only for types whose all-zero bit pattern is a valid,
/// initialised value and that have no drop glue.
pub(crate) unsafe trait ZeroInit {}

// SAFETY: an AtomicU64 of zero bytes is the value 0; no drop glue.
unsafe impl ZeroInit for std::sync::atomic::AtomicU64 {}

/// A fixed-length array of `T`, zero-initialised, never reallocated.
pub(crate) struct ZeroedArray<T: ZeroInit> {
    ptr: NonNull<T>,
    len: usize,
    mapping: Mapping,
}

enum Mapping {
    /// Nothing allocated (zero-sized).
    Empty,
    /// From the global allocator with this layout.
    #[cfg_attr(target_os = "linux", allow(dead_code))]
    Heap(std::alloc::Layout),
    /// An anonymous mapping: base address and length to unmap.
    #[cfg(target_os = "linux")]
    Mapped { base: *mut libc::c_void, len: usize },
}

// SAFETY: the array owns its memory; sharing it is sharing `[T]`.
unsafe impl<T: ZeroInit + Sync> Sync for ZeroedArray<T> {}
// SAFETY: as above; moving the owner moves no `T`.
unsafe impl<T: ZeroInit + Send> Send for ZeroedArray<T> {}

const HUGE_PAGE: usize = 2 << 20;

impl<T: ZeroInit> ZeroedArray<T> {
    /// `len` zeroed elements. Aborts like `Vec` on allocation failure.
    pub fn new(len: usize) -> ZeroedArray<T> {
        let size = std::mem::size_of::<T>()
            .checked_mul(len)
            .expect("connection table size overflows usize");
        if size == 0 {
            return ZeroedArray {
                ptr: NonNull::dangling(),
                len,
                mapping: Mapping::Empty,
            };
        }
        #[cfg(target_os = "linux")]
        if size >= HUGE_PAGE {
            if let Some(array) = Self::mapped(len, size) {
                return array;
            }
        }
        let layout = std::alloc::Layout::from_size_align(size, std::mem::align_of::<T>())
            .expect("connection table layout");
        // SAFETY: `layout` has a non-zero size.
        let raw = unsafe { std::alloc::alloc_zeroed(layout) };
        let Some(ptr) = NonNull::new(raw.cast::<T>()) else {
            std::alloc::handle_alloc_error(layout)
        };
        ZeroedArray {
            ptr,
            len,
            mapping: Mapping::Heap(layout),
        }
    }

    #[cfg(target_os = "linux")]
    fn mapped(len: usize, size: usize) -> Option<ZeroedArray<T>> {
        let map_len = size.checked_add(HUGE_PAGE)?;
        // SAFETY: an anonymous private mapping at an address of the
        // kernel's choice touches no existing memory.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return None;
        }
        let aligned = (base as usize).next_multiple_of(HUGE_PAGE);
        // SAFETY: `aligned..aligned + size` lies inside the mapping; the
        // advice changes no content. Its failure is harmless.
        unsafe {
            libc::madvise(aligned as *mut libc::c_void, size, libc::MADV_HUGEPAGE);
        }
        let ptr = NonNull::new(aligned as *mut T)?;
        Some(ZeroedArray {
            ptr,
            len,
            mapping: Mapping::Mapped { base, len: map_len },
        })
    }
}

impl<T: ZeroInit> Deref for ZeroedArray<T> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        // SAFETY: `ptr` points to `len` zero-initialised `T`s (valid by
        // `ZeroInit`), suitably aligned, owned by `self` and never freed
        // before `self` is dropped.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl<T: ZeroInit> Drop for ZeroedArray<T> {
    fn drop(&mut self) {
        match self.mapping {
            Mapping::Empty => {}
            // SAFETY: allocated by `alloc_zeroed` with this very layout;
            // `T` has no drop glue (`ZeroInit`).
            Mapping::Heap(layout) => unsafe {
                std::alloc::dealloc(self.ptr.as_ptr().cast::<u8>(), layout)
            },
            #[cfg(target_os = "linux")]
            Mapping::Mapped { base, len } => {
                // SAFETY: the mapping made in `mapped`, unmapped once.
                unsafe {
                    libc::munmap(base, len);
                }
            }
        }
    }
}

impl<T: ZeroInit> std::fmt::Debug for ZeroedArray<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ZeroedArray(len {})", self.len)
    }
}
