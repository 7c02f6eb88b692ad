package sshnative

import (
	"os"
	"syscall"
	"time"
)

// fileStamp is what a stat tells of a file, by which a file read before
// is known to be unchanged without reading it again: which file the path
// names (device and inode: a file renamed over it, as ssh-keygen -R and
// most configuration tools write, is another), its size, and its
// modification and status change times. The zero stamp is a missing file.
type fileStamp struct {
	exists       bool
	dev, ino     uint64
	size         int64
	mtime, ctime int64 // nanoseconds since the epoch
}

// stampOf stats path; a file that cannot be stat'ed is missing (read, it
// would fail, and ssh skips it as well).
func stampOf(path string) fileStamp {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}
	}
	s := fileStamp{exists: true, size: fi.Size(), mtime: fi.ModTime().UnixNano()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		s.dev, s.ino = uint64(st.Dev), uint64(st.Ino)
		s.ctime = time.Unix(int64(st.Ctim.Sec), int64(st.Ctim.Nsec)).UnixNano()
	}
	return s
}

// stampsOf appends the stamps of paths to dst.
func stampsOf(dst []fileStamp, paths []string) []fileStamp {
	for _, p := range paths {
		dst = append(dst, stampOf(p))
	}
	return dst
}

// racyWindow is how close to its reading a file's modification time must
// be for its stamp not to vouch for the contents read. A file system keeps
// times at a granularity (a clock tick on Linux, up to 2s on FAT), so a
// rewrite of the same size in the same tick (one key replaced by another
// of its type) leaves the stamp as it was; a file modified this close to
// when it was read is read again at its next use, until a reading comes
// after its last change by more than the window (git's "racily clean"
// index entries).
const racyWindow = 2 * time.Second

// racy tells whether stamps taken at (just before reading the files) may
// hide a later change.
func racy(stamps []fileStamp, at time.Time) bool {
	limit := at.Add(-racyWindow).UnixNano()
	for _, s := range stamps {
		if s.exists && s.mtime >= limit {
			return true
		}
	}
	return false
}
