package main

import (
	"os"
	"sync"
)

// logFile is a log exed writes to a file it names ([log] error_log,
// access_log, audit_log): SIGHUP reopens it, so that a rotation that
// renames the file (logrotate's default, then `kill -HUP`) has exed
// write to the new file rather than on, unseen, to the renamed or
// compressed-away one.
type logFile struct {
	path string
	perm os.FileMode

	mu sync.Mutex
	f  *os.File
}

// openLogFile opens path for appending, creating it with perm.
func openLogFile(path string, perm os.FileMode) (*logFile, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, perm)
	if err != nil {
		return nil, err
	}
	return &logFile{path: path, perm: perm, f: f}, nil
}

func (l *logFile) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.f.Write(p)
}

// reopen opens the path again and writes there from now on. When it
// cannot, the file in use stays and the error says why.
func (l *logFile) reopen() error {
	f, err := os.OpenFile(l.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, l.perm)
	if err != nil {
		return err
	}
	l.mu.Lock()
	old := l.f
	l.f = f
	l.mu.Unlock()
	return old.Close()
}

func (l *logFile) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.f.Close()
}
