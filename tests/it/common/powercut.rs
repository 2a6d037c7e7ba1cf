//! A simulated disk that can lose power: a SQLite VFS that wraps the
//! default one ("unix") and keeps what was not yet synced in memory.
//!
//! The model:
//!
//! - **Page cache.** Every write (`xWrite`, `xTruncate`) to a named file
//!   goes to an in-memory overlay of that file, shared by every handle that
//!   opens the same path (as the kernel's page cache is). Reads, the file's
//!   size and `xAccess`'s "exists" see the overlay over the real file, so
//!   every connection of the process sees its own writes, as on a real
//!   machine. Nothing reaches the real file yet.
//! - **Disk.** `xSync` on a file writes that file's overlay (its writes and
//!   truncations since the last sync, in full) to the real file, syncs it
//!   and drops the overlay. So the real files hold exactly what was synced:
//!   what a disk would have after a power cut.
//! - **Power cut** ([`PowerCut::cut`]). Every overlay is dropped (what the
//!   disk never got) and from then on every read, write, truncation, sync
//!   and delete through this VFS fails with an I/O error (the machine is
//!   off). A cut waits for a sync in progress, so a sync either reached the
//!   disk whole before the cut or not at all.
//! - **Passed through untouched:** locks, shared memory (`xShmMap`,
//!   `xShmLock`, `xShmBarrier`, `xShmUnmap`: the `-shm` file, which the
//!   tests delete after a cut since shared memory does not survive one),
//!   file controls, sector size, device characteristics, and files without
//!   a name (temporary files).
//!
//! What it does not model: a sync that reaches the disk in part, unsynced
//! writes that happen to reach the disk anyway (in any order), torn sector
//! writes, and directory entries (creating and deleting a file are
//! durable at once). Losing *every* unsynced write is the case an
//! acknowledgement after `fsync` must survive; that is what it checks.
//!
//! After a cut the real files are frozen, so a test copies the database
//! and its `-wal` (not the `-shm`) to a fresh directory and opens the copy
//! with the normal VFS: a different file to SQLite, which then recovers
//! the WAL from what is on "disk" alone. (Reopening the same path in the
//! same process would share the abandoned connections' in-process lock and
//! shared-memory state, which a rebooted machine would not have.)

use std::collections::{BTreeMap, HashMap};
use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

use rusqlite::ffi;

/// Bytes per overlay block.
const BLOCK: usize = 4096;

/// A registered power-cut VFS. Each one is its own machine: cutting it
/// affects only the connections opened with its [`name`](Self::name).
pub struct PowerCut {
    state: &'static VfsState,
}

struct VfsState {
    real: *mut ffi::sqlite3_vfs,
    name: CString,
    disk: Mutex<Disk>,
}

// The real VFS is SQLite's own, which is thread-safe; the rest is behind
// the mutex.
unsafe impl Send for VfsState {}
unsafe impl Sync for VfsState {}

#[derive(Default)]
struct Disk {
    off: bool,
    /// Unsynced changes, by file path.
    files: HashMap<String, Overlay>,
    /// Syncs that wrote something to a real file (for the tests' reports).
    syncs: u64,
}

/// What a file looks like to the running machine, on top of the real
/// (synced) file.
struct Overlay {
    /// The file's size as SQLite sees it.
    size: i64,
    /// Below this offset, bytes that no block holds are the real file's;
    /// from it on they are zero (the file was truncated since its last
    /// sync, or never held them).
    floor: i64,
    /// Whole blocks written since the last sync, by block index. Bytes
    /// past `size` are zero.
    blocks: BTreeMap<i64, Box<[u8]>>,
}

/// An open file: SQLite allocates `szOsFile` bytes for it and we lay this
/// out there; `base` must come first.
#[repr(C)]
struct PcFile {
    base: ffi::sqlite3_file,
    real: *mut ffi::sqlite3_file,
    real_size: usize,
    state: *const VfsState,
    /// The path the overlay is kept under; `None` for temporary files.
    path: *mut String,
}

static NEXT: AtomicUsize = AtomicUsize::new(0);

impl PowerCut {
    /// Registers a new VFS (never the default one) over SQLite's default.
    pub fn register() -> PowerCut {
        // SAFETY: plain SQLite calls; the VFS struct and its state are
        // leaked, so they outlive every connection that uses them.
        unsafe {
            let real = ffi::sqlite3_vfs_find(std::ptr::null());
            assert!(!real.is_null(), "SQLite has a default VFS");
            let name = CString::new(format!(
                "powercut-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ))
            .expect("name");
            let state: &'static VfsState = Box::leak(Box::new(VfsState {
                real,
                name,
                disk: Mutex::new(Disk::default()),
            }));
            let vfs = Box::leak(Box::new(ffi::sqlite3_vfs {
                iVersion: 2,
                szOsFile: std::mem::size_of::<PcFile>() as c_int,
                mxPathname: (*real).mxPathname,
                pNext: std::ptr::null_mut(),
                zName: state.name.as_ptr(),
                pAppData: state as *const VfsState as *mut c_void,
                xOpen: Some(x_open),
                xDelete: Some(x_delete),
                xAccess: Some(x_access),
                xFullPathname: Some(x_full_pathname),
                xDlOpen: None,
                xDlError: None,
                xDlSym: None,
                xDlClose: None,
                xRandomness: Some(x_randomness),
                xSleep: Some(x_sleep),
                xCurrentTime: Some(x_current_time),
                xGetLastError: Some(x_get_last_error),
                xCurrentTimeInt64: Some(x_current_time_int64),
                xSetSystemCall: None,
                xGetSystemCall: None,
                xNextSystemCall: None,
            }));
            let rc = ffi::sqlite3_vfs_register(vfs, 0);
            assert_eq!(rc, ffi::SQLITE_OK, "the VFS registers");
            PowerCut { state }
        }
    }

    /// The name to open connections with.
    pub fn name(&self) -> String {
        self.state.name.to_string_lossy().into_owned()
    }

    /// The power goes off: unsynced writes are lost, and nothing more
    /// reaches the disk. Returns how many files had unsynced changes.
    pub fn cut(&self) -> usize {
        let mut disk = self.state.lock();
        disk.off = true;
        let lost = disk.files.len();
        disk.files.clear();
        lost
    }

    /// Syncs so far that wrote to a real file.
    pub fn syncs(&self) -> u64 {
        self.state.lock().syncs
    }
}

impl VfsState {
    fn lock(&self) -> MutexGuard<'_, Disk> {
        // A panic while holding it (a test assertion elsewhere) must not
        // turn every later SQLite call into a second panic.
        self.disk.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn real(&self) -> &ffi::sqlite3_vfs {
        // SAFETY: SQLite's default VFS lives as long as the process.
        unsafe { &*self.real }
    }
}

unsafe fn vfs_state<'a>(vfs: *mut ffi::sqlite3_vfs) -> &'a VfsState {
    unsafe { &*((*vfs).pAppData as *const VfsState) }
}

unsafe fn file<'a>(f: *mut ffi::sqlite3_file) -> &'a PcFile {
    unsafe { &*(f as *const PcFile) }
}

impl PcFile {
    fn state(&self) -> &VfsState {
        // SAFETY: leaked in `register`.
        unsafe { &*self.state }
    }

    fn path(&self) -> Option<&str> {
        // SAFETY: set in `x_open`, freed in `x_close`.
        unsafe { self.path.as_ref().map(String::as_str) }
    }

    fn methods(&self) -> &ffi::sqlite3_io_methods {
        // SAFETY: the real file was opened successfully in `x_open`.
        unsafe { &*(*self.real).pMethods }
    }

    /// Reads the real file; a short read is zero-filled and fine.
    fn read_real(&self, buf: &mut [u8], offset: i64) -> c_int {
        let read = self.methods().xRead.expect("xRead");
        // SAFETY: `buf` is valid for its length.
        let rc = unsafe {
            read(
                self.real,
                buf.as_mut_ptr().cast(),
                buf.len() as c_int,
                offset,
            )
        };
        if rc == ffi::SQLITE_IOERR_SHORT_READ {
            ffi::SQLITE_OK
        } else {
            rc
        }
    }

    fn real_size(&self) -> Result<i64, c_int> {
        let size = self.methods().xFileSize.expect("xFileSize");
        let mut out = 0;
        // SAFETY: the real file is open.
        match unsafe { size(self.real, &mut out) } {
            ffi::SQLITE_OK => Ok(out),
            rc => Err(rc),
        }
    }

    /// The overlay of this file, created from the real file on first use.
    fn overlay<'d>(&self, disk: &'d mut Disk, path: &str) -> Result<&'d mut Overlay, c_int> {
        if !disk.files.contains_key(path) {
            let size = self.real_size()?;
            disk.files.insert(
                path.to_owned(),
                Overlay {
                    size,
                    floor: size,
                    blocks: BTreeMap::new(),
                },
            );
        }
        Ok(disk.files.get_mut(path).expect("inserted"))
    }

    /// Block `index` as the machine sees it before a change.
    fn load_block(&self, overlay: &Overlay, index: i64) -> Result<Box<[u8]>, c_int> {
        let mut block = vec![0u8; BLOCK].into_boxed_slice();
        let start = index * BLOCK as i64;
        if start < overlay.floor {
            let rc = self.read_real(&mut block, start);
            if rc != ffi::SQLITE_OK {
                return Err(rc);
            }
            let keep = (overlay.floor - start).min(BLOCK as i64) as usize;
            block[keep..].fill(0);
        }
        Ok(block)
    }
}

unsafe extern "C" fn x_open(
    vfs: *mut ffi::sqlite3_vfs,
    name: ffi::sqlite3_filename,
    f: *mut ffi::sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    unsafe {
        let state = vfs_state(vfs);
        let pc = f as *mut PcFile;
        (*pc).base.pMethods = std::ptr::null();
        let real_size = state.real().szOsFile as usize;
        let layout = std::alloc::Layout::from_size_align(real_size.max(8), 16).expect("layout");
        let real = std::alloc::alloc_zeroed(layout) as *mut ffi::sqlite3_file;
        if real.is_null() {
            return ffi::SQLITE_NOMEM;
        }
        let open = state.real().xOpen.expect("xOpen");
        let rc = open(state.real, name, real, flags, out_flags);
        if rc != ffi::SQLITE_OK {
            if !(*real).pMethods.is_null()
                && let Some(close) = (*(*real).pMethods).xClose
            {
                close(real);
            }
            std::alloc::dealloc(real.cast(), layout);
            return rc;
        }
        let path = if name.is_null() {
            std::ptr::null_mut()
        } else {
            Box::into_raw(Box::new(
                CStr::from_ptr(name).to_string_lossy().into_owned(),
            ))
        };
        std::ptr::write(
            pc,
            PcFile {
                base: ffi::sqlite3_file { pMethods: &METHODS },
                real,
                real_size,
                state,
                path,
            },
        );
        ffi::SQLITE_OK
    }
}

unsafe extern "C" fn x_close(f: *mut ffi::sqlite3_file) -> c_int {
    unsafe {
        let pc = &mut *(f as *mut PcFile);
        let close = pc.methods().xClose.expect("xClose");
        let rc = close(pc.real);
        let layout = std::alloc::Layout::from_size_align(pc.real_size.max(8), 16).expect("layout");
        std::alloc::dealloc(pc.real.cast(), layout);
        if !pc.path.is_null() {
            drop(Box::from_raw(pc.path));
            pc.path = std::ptr::null_mut();
        }
        // Unsynced changes stay in the "page cache" after a close, as they
        // do on a real machine.
        rc
    }
}

unsafe extern "C" fn x_read(
    f: *mut ffi::sqlite3_file,
    out: *mut c_void,
    amount: c_int,
    offset: i64,
) -> c_int {
    unsafe {
        let pc = file(f);
        let buf = std::slice::from_raw_parts_mut(out as *mut u8, amount as usize);
        let Some(path) = pc.path() else {
            let read = pc.methods().xRead.expect("xRead");
            return read(pc.real, out, amount, offset);
        };
        let disk = pc.state().lock();
        if disk.off {
            return ffi::SQLITE_IOERR_READ;
        }
        let Some(overlay) = disk.files.get(path) else {
            let read = pc.methods().xRead.expect("xRead");
            return read(pc.real, out, amount, offset);
        };
        let rc = pc.read_real(buf, offset);
        if rc != ffi::SQLITE_OK {
            return rc;
        }
        let end = offset + amount as i64;
        if end > overlay.floor {
            let from = (overlay.floor - offset).max(0) as usize;
            buf[from..].fill(0);
        }
        let first = offset / BLOCK as i64;
        let last = (end - 1) / BLOCK as i64;
        for (&index, block) in overlay.blocks.range(first..=last) {
            let start = index * BLOCK as i64;
            let lo = start.max(offset);
            let hi = (start + BLOCK as i64).min(end);
            buf[(lo - offset) as usize..(hi - offset) as usize]
                .copy_from_slice(&block[(lo - start) as usize..(hi - start) as usize]);
        }
        if end > overlay.size {
            let from = (overlay.size - offset).max(0) as usize;
            buf[from..].fill(0);
            return ffi::SQLITE_IOERR_SHORT_READ;
        }
        ffi::SQLITE_OK
    }
}

unsafe extern "C" fn x_write(
    f: *mut ffi::sqlite3_file,
    data: *const c_void,
    amount: c_int,
    offset: i64,
) -> c_int {
    unsafe {
        let pc = file(f);
        let Some(path) = pc.path() else {
            let write = pc.methods().xWrite.expect("xWrite");
            return write(pc.real, data, amount, offset);
        };
        let data = std::slice::from_raw_parts(data as *const u8, amount as usize);
        let mut disk = pc.state().lock();
        if disk.off {
            return ffi::SQLITE_IOERR_WRITE;
        }
        let overlay = match pc.overlay(&mut disk, path) {
            Ok(overlay) => overlay,
            Err(rc) => return rc,
        };
        let end = offset + amount as i64;
        let mut at = offset;
        while at < end {
            let index = at / BLOCK as i64;
            let start = index * BLOCK as i64;
            if !overlay.blocks.contains_key(&index) {
                match pc.load_block(overlay, index) {
                    Ok(block) => {
                        overlay.blocks.insert(index, block);
                    }
                    Err(rc) => return rc,
                }
            }
            let block = overlay.blocks.get_mut(&index).expect("loaded");
            let hi = (start + BLOCK as i64).min(end);
            block[(at - start) as usize..(hi - start) as usize]
                .copy_from_slice(&data[(at - offset) as usize..(hi - offset) as usize]);
            at = hi;
        }
        overlay.size = overlay.size.max(end);
        ffi::SQLITE_OK
    }
}

unsafe extern "C" fn x_truncate(f: *mut ffi::sqlite3_file, size: i64) -> c_int {
    unsafe {
        let pc = file(f);
        let Some(path) = pc.path() else {
            let truncate = pc.methods().xTruncate.expect("xTruncate");
            return truncate(pc.real, size);
        };
        let mut disk = pc.state().lock();
        if disk.off {
            return ffi::SQLITE_IOERR_TRUNCATE;
        }
        let overlay = match pc.overlay(&mut disk, path) {
            Ok(overlay) => overlay,
            Err(rc) => return rc,
        };
        if size < overlay.size {
            overlay.floor = overlay.floor.min(size);
            let first_gone = (size + BLOCK as i64 - 1) / BLOCK as i64;
            overlay.blocks.split_off(&first_gone);
            if let Some(block) = overlay.blocks.get_mut(&(size / BLOCK as i64)) {
                block[(size % BLOCK as i64) as usize..].fill(0);
            }
        }
        overlay.size = size;
        ffi::SQLITE_OK
    }
}

unsafe extern "C" fn x_sync(f: *mut ffi::sqlite3_file, flags: c_int) -> c_int {
    unsafe {
        let pc = file(f);
        let sync = pc.methods().xSync.expect("xSync");
        let Some(path) = pc.path() else {
            return sync(pc.real, flags);
        };
        {
            // Held while the overlay is applied: a power cut waits for it.
            let mut disk = pc.state().lock();
            if disk.off {
                return ffi::SQLITE_IOERR_FSYNC;
            }
            if let Some(overlay) = disk.files.remove(path) {
                let rc = apply(pc, &overlay);
                if rc != ffi::SQLITE_OK {
                    disk.files.insert(path.to_owned(), overlay);
                    return rc;
                }
                disk.syncs += 1;
            }
        }
        // The real files are the simulated disk: what is written to them
        // has survived. Their own sync is only good manners.
        sync(pc.real, flags)
    }
}

/// Writes an overlay to the real file: the truncation first (so that no
/// stale byte survives past `floor`), then every block, then the size.
fn apply(pc: &PcFile, overlay: &Overlay) -> c_int {
    let methods = pc.methods();
    let (truncate, write) = (
        methods.xTruncate.expect("xTruncate"),
        methods.xWrite.expect("xWrite"),
    );
    let real = match pc.real_size() {
        Ok(size) => size,
        Err(rc) => return rc,
    };
    // SAFETY: the real file is open; every slice is in bounds.
    unsafe {
        if overlay.floor < real {
            let rc = truncate(pc.real, overlay.floor);
            if rc != ffi::SQLITE_OK {
                return rc;
            }
        }
        for (&index, block) in &overlay.blocks {
            let start = index * BLOCK as i64;
            let len = (overlay.size - start).min(BLOCK as i64);
            if len <= 0 {
                continue;
            }
            let rc = write(pc.real, block.as_ptr().cast(), len as c_int, start);
            if rc != ffi::SQLITE_OK {
                return rc;
            }
        }
        let now = match pc.real_size() {
            Ok(size) => size,
            Err(rc) => return rc,
        };
        if now != overlay.size {
            let rc = truncate(pc.real, overlay.size);
            if rc != ffi::SQLITE_OK {
                return rc;
            }
        }
    }
    ffi::SQLITE_OK
}

unsafe extern "C" fn x_file_size(f: *mut ffi::sqlite3_file, out: *mut i64) -> c_int {
    unsafe {
        let pc = file(f);
        let size = pc.methods().xFileSize.expect("xFileSize");
        let Some(path) = pc.path() else {
            return size(pc.real, out);
        };
        let disk = pc.state().lock();
        if disk.off {
            return ffi::SQLITE_IOERR_FSTAT;
        }
        match disk.files.get(path) {
            Some(overlay) => {
                *out = overlay.size;
                ffi::SQLITE_OK
            }
            None => size(pc.real, out),
        }
    }
}

unsafe extern "C" fn x_lock(f: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    unsafe {
        let pc = file(f);
        pc.methods().xLock.expect("xLock")(pc.real, level)
    }
}

unsafe extern "C" fn x_unlock(f: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    unsafe {
        let pc = file(f);
        pc.methods().xUnlock.expect("xUnlock")(pc.real, level)
    }
}

unsafe extern "C" fn x_check_reserved_lock(f: *mut ffi::sqlite3_file, out: *mut c_int) -> c_int {
    unsafe {
        let pc = file(f);
        pc.methods().xCheckReservedLock.expect("xCheckReservedLock")(pc.real, out)
    }
}

unsafe extern "C" fn x_file_control(
    f: *mut ffi::sqlite3_file,
    op: c_int,
    arg: *mut c_void,
) -> c_int {
    unsafe {
        let pc = file(f);
        match op {
            // Hints that would make the real VFS grow the real file
            // behind the overlay's back: not needed, so not taken.
            ffi::SQLITE_FCNTL_SIZE_HINT | ffi::SQLITE_FCNTL_CHUNK_SIZE => ffi::SQLITE_OK,
            _ => pc.methods().xFileControl.expect("xFileControl")(pc.real, op, arg),
        }
    }
}

unsafe extern "C" fn x_sector_size(f: *mut ffi::sqlite3_file) -> c_int {
    unsafe {
        let pc = file(f);
        pc.methods().xSectorSize.expect("xSectorSize")(pc.real)
    }
}

unsafe extern "C" fn x_device_characteristics(f: *mut ffi::sqlite3_file) -> c_int {
    unsafe {
        let pc = file(f);
        pc.methods()
            .xDeviceCharacteristics
            .expect("xDeviceCharacteristics")(pc.real)
    }
}

unsafe extern "C" fn x_shm_map(
    f: *mut ffi::sqlite3_file,
    page: c_int,
    size: c_int,
    extend: c_int,
    out: *mut *mut c_void,
) -> c_int {
    unsafe {
        let pc = file(f);
        match pc.methods().xShmMap {
            Some(map) => map(pc.real, page, size, extend, out),
            None => ffi::SQLITE_IOERR_SHMMAP,
        }
    }
}

unsafe extern "C" fn x_shm_lock(
    f: *mut ffi::sqlite3_file,
    offset: c_int,
    n: c_int,
    flags: c_int,
) -> c_int {
    unsafe {
        let pc = file(f);
        match pc.methods().xShmLock {
            Some(lock) => lock(pc.real, offset, n, flags),
            None => ffi::SQLITE_IOERR_SHMLOCK,
        }
    }
}

unsafe extern "C" fn x_shm_barrier(f: *mut ffi::sqlite3_file) {
    unsafe {
        let pc = file(f);
        if let Some(barrier) = pc.methods().xShmBarrier {
            barrier(pc.real)
        }
    }
}

unsafe extern "C" fn x_shm_unmap(f: *mut ffi::sqlite3_file, delete: c_int) -> c_int {
    unsafe {
        let pc = file(f);
        match pc.methods().xShmUnmap {
            Some(unmap) => unmap(pc.real, delete),
            None => ffi::SQLITE_OK,
        }
    }
}

/// Version 2: shared memory, no memory-mapped reads (`xFetch`), which
/// would read the real file past the overlay.
static METHODS: ffi::sqlite3_io_methods = ffi::sqlite3_io_methods {
    iVersion: 2,
    xClose: Some(x_close),
    xRead: Some(x_read),
    xWrite: Some(x_write),
    xTruncate: Some(x_truncate),
    xSync: Some(x_sync),
    xFileSize: Some(x_file_size),
    xLock: Some(x_lock),
    xUnlock: Some(x_unlock),
    xCheckReservedLock: Some(x_check_reserved_lock),
    xFileControl: Some(x_file_control),
    xSectorSize: Some(x_sector_size),
    xDeviceCharacteristics: Some(x_device_characteristics),
    xShmMap: Some(x_shm_map),
    xShmLock: Some(x_shm_lock),
    xShmBarrier: Some(x_shm_barrier),
    xShmUnmap: Some(x_shm_unmap),
    xFetch: None,
    xUnfetch: None,
};

unsafe extern "C" fn x_delete(
    vfs: *mut ffi::sqlite3_vfs,
    name: *const c_char,
    sync_dir: c_int,
) -> c_int {
    unsafe {
        let state = vfs_state(vfs);
        let mut disk = state.lock();
        if disk.off {
            return ffi::SQLITE_IOERR_DELETE;
        }
        disk.files
            .remove(CStr::from_ptr(name).to_string_lossy().as_ref());
        state.real().xDelete.expect("xDelete")(state.real, name, sync_dir)
    }
}

unsafe extern "C" fn x_access(
    vfs: *mut ffi::sqlite3_vfs,
    name: *const c_char,
    flags: c_int,
    out: *mut c_int,
) -> c_int {
    unsafe {
        let state = vfs_state(vfs);
        let rc = state.real().xAccess.expect("xAccess")(state.real, name, flags, out);
        if rc == ffi::SQLITE_OK && flags == ffi::SQLITE_ACCESS_EXISTS {
            // The real VFS says a file "exists" when it is not empty; the
            // machine sees the overlay's size.
            let disk = state.lock();
            if let Some(overlay) = disk
                .files
                .get(CStr::from_ptr(name).to_string_lossy().as_ref())
            {
                *out = c_int::from(overlay.size > 0);
            }
        }
        rc
    }
}

unsafe extern "C" fn x_full_pathname(
    vfs: *mut ffi::sqlite3_vfs,
    name: *const c_char,
    n: c_int,
    out: *mut c_char,
) -> c_int {
    unsafe {
        let state = vfs_state(vfs);
        state.real().xFullPathname.expect("xFullPathname")(state.real, name, n, out)
    }
}

unsafe extern "C" fn x_randomness(vfs: *mut ffi::sqlite3_vfs, n: c_int, out: *mut c_char) -> c_int {
    unsafe {
        let state = vfs_state(vfs);
        state.real().xRandomness.expect("xRandomness")(state.real, n, out)
    }
}

unsafe extern "C" fn x_sleep(vfs: *mut ffi::sqlite3_vfs, micros: c_int) -> c_int {
    unsafe {
        let state = vfs_state(vfs);
        state.real().xSleep.expect("xSleep")(state.real, micros)
    }
}

unsafe extern "C" fn x_current_time(vfs: *mut ffi::sqlite3_vfs, out: *mut f64) -> c_int {
    unsafe {
        let state = vfs_state(vfs);
        state.real().xCurrentTime.expect("xCurrentTime")(state.real, out)
    }
}

unsafe extern "C" fn x_get_last_error(
    vfs: *mut ffi::sqlite3_vfs,
    n: c_int,
    out: *mut c_char,
) -> c_int {
    unsafe {
        let state = vfs_state(vfs);
        match state.real().xGetLastError {
            Some(last) => last(state.real, n, out),
            None => 0,
        }
    }
}

unsafe extern "C" fn x_current_time_int64(vfs: *mut ffi::sqlite3_vfs, out: *mut i64) -> c_int {
    unsafe {
        let state = vfs_state(vfs);
        state.real().xCurrentTimeInt64.expect("xCurrentTimeInt64")(state.real, out)
    }
}
