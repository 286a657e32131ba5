package topo

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Secrets — keys of MACsec, IPsec, MKA, IKE — are never required inline: a
// topology names a file (which only its owner may read) or an environment
// variable. These helpers read them for the features, with errors that say
// where a secret came from and never quote it.

// KeyPair are static keys, one per direction: A's is what the first
// endpoint sends with (and the second receives with), B's the reverse.
type KeyPair struct {
	Pos Pos
	A   KeySource `yaml:"a"`
	B   KeySource `yaml:"b"`
}

// KeySource says where a secret is: a file, or an environment variable, of
// hex digits. Secrets are never required inline (a ${VAR} works too).
type KeySource struct {
	Pos  Pos
	File string `yaml:"file"`
	Env  string `yaml:"env"`
	Hex  string `yaml:"hex"`
}

// ReadKey reads a key of n bytes, written as 2n hex digits, from where the
// source says. Errors name the source, never the key.
func ReadKey(src KeySource, dir string, n int, where string, ps Reporter) ([]byte, bool) {
	text, from, ok := ReadSecret(src, dir, n, where, ps)
	if !ok || n == 0 { // n == 0: the length is unknown, the cipher having been refused
		return nil, false
	}
	key, err := hex.DecodeString(text)
	if err != nil || len(key) != n {
		ps.Errorf(src.Pos, "%s: the key in %s must be %d hex digits for this cipher", where, from, 2*n)
		return nil, false
	}
	return key, true
}

// ReadSecret reads a secret's text from a file (which only its owner may
// read), an environment variable, or inline hex, and says where it came
// from for messages — which never quote it.
func ReadSecret(src KeySource, dir string, n int, where string, ps Reporter) (text, from string, ok bool) {
	switch {
	case src.File != "" && src.Env == "" && src.Hex == "":
		path := src.File
		if !filepath.IsAbs(path) {
			path = filepath.Join(dir, path)
		}
		st, err := os.Stat(path)
		if g, ok := ps.(keyMaker); ok && g.generateKeys() && errors.Is(err, fs.ErrNotExist) && n > 0 {
			if err := WriteKey(path, n); err != nil {
				ps.Errorf(src.Pos, "%s: making key file %s: %v", where, src.File, err)
				return "", "", false
			}
			ps.Warnf(src.Pos, "%s: made key file %s (%d random bytes, mode 0600)", where, src.File, n)
			st, err = os.Stat(path)
		}
		if errors.Is(err, fs.ErrNotExist) {
			bytes := ""
			if n > 0 {
				bytes = fmt.Sprintf("--bytes %d ", n)
			}
			ps.Errorf(src.Pos, "%s: key file %s does not exist; make one with: erlab macsec keygen %s%s", where, src.File, bytes, path)
			return "", "", false
		}
		if err != nil {
			ps.Errorf(src.Pos, "%s: %v", where, err)
			return "", "", false
		}
		if st.Mode().Perm()&0o077 != 0 {
			ps.Errorf(src.Pos, "%s: key file %s is readable by others (mode %04o); chmod 600 it", where, src.File, st.Mode().Perm())
			return "", "", false
		}
		b, err := os.ReadFile(path)
		if err != nil {
			ps.Errorf(src.Pos, "%s: %v", where, err)
			return "", "", false
		}
		text, from = string(b), "file "+src.File
	case src.Env != "" && src.File == "" && src.Hex == "":
		v, set := ps.LookupEnv(src.Env)
		if !set {
			ps.Errorf(src.Pos, "%s: environment variable %s is not set", where, src.Env)
			return "", "", false
		}
		text, from = v, "environment variable "+src.Env
	case src.Hex != "" && src.File == "" && src.Env == "":
		text, from = src.Hex, "hex"
	default:
		ps.Errorf(src.Pos, "%s: give exactly one of file:, env: or hex:", where)
		return "", "", false
	}
	return strings.TrimSpace(text), from, true
}

// keyMaker is a Reporter that makes missing key files (deploy
// --generate-keys) instead of refusing them.
type keyMaker interface{ generateKeys() bool }

func (ps *problems) generateKeys() bool { return ps.generate }

// WriteKey writes a random key of n bytes, as hex digits, to a new file
// only its owner may read, making its folder (mode 0700) if need be. An
// existing file is never overwritten.
func WriteKey(path string, n int) error {
	key := make([]byte, n)
	if _, err := rand.Read(key); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(f, hex.EncodeToString(key))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
