// Package fileutil holds erlab's one way to write a file that a reader
// must never see half-written (a lab's state, a daemon's status, a
// configuration holding a key): github.com/google/renameio, which writes a
// temporary file beside the target, syncs it and renames it over.
package fileutil

import (
	"os"
	"path/filepath"

	"github.com/google/renameio/v2"
)

// WriteFile writes data to path atomically with mode perm, whatever mode
// an earlier file there had (a key file stays 0600 even if someone made
// the old one readable).
func WriteFile(path string, data []byte, perm os.FileMode) error {
	// Not renameio.WriteFile: it keeps an existing file's mode.
	f, err := renameio.NewPendingFile(path, renameio.WithPermissions(perm), renameio.WithTempDir(filepath.Dir(path)))
	if err != nil {
		return err
	}
	defer f.Cleanup()
	if _, err := f.Write(data); err != nil {
		return err
	}
	return f.CloseAtomicallyReplace()
}
