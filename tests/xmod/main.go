// Command xmod answers golang.org/x/mod's verdicts on module paths, versions and module zips,
// for the differential tests in tests/tests/differential.rs.
//
// It reads one JSON request per line on stdin and writes one JSON answer per line on stdout,
// in order, so that a test can send tens of thousands of inputs through one process. A request
// is {"op": ..., "a": ..., "b": ..., "c": ...}; an answer is an object of string fields, where
// a field ending in "_err" is empty when the x/mod call succeeded.
package main

import (
	stdzip "archive/zip"
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/mod/module"
	"golang.org/x/mod/semver"
	"golang.org/x/mod/sumdb/dirhash"
	"golang.org/x/mod/zip"
)

type request struct {
	Op string `json:"op"`
	A  string `json:"a"`
	B  string `json:"b"`
	C  string `json:"c"`
}

type answer map[string]string

func errText(err error) string {
	if err == nil {
		return ""
	}
	if s := err.Error(); s != "" {
		return s
	}
	return "error"
}

func boolText(b bool) string { return strconv.FormatBool(b) }

// path: CheckPath, EscapePath, SplitPathVersion and PathMajorPrefix of a decoded module path.
func path(p string) answer {
	esc, escErr := module.EscapePath(p)
	prefix, major, ok := module.SplitPathVersion(p)
	majorPrefix := ""
	if ok && major != "" {
		majorPrefix = pathMajorPrefix(major)
	}
	return answer{
		"major_prefix": majorPrefix,
		"check_err":    errText(module.CheckPath(p)),
		"escaped":      esc,
		"escape_err":   errText(escErr),
		"prefix":       prefix,
		"major":        major,
		"split_ok":     boolText(ok),
	}
}

// pathMajorPrefix is module.PathMajorPrefix, which panics for some suffixes that CheckPath
// accepts (gopkg.in/x.v-unstable); the panic becomes the answer.
func pathMajorPrefix(major string) (prefix string) {
	defer func() {
		if r := recover(); r != nil {
			prefix = fmt.Sprintf("panic: %v", r)
		}
	}()
	return module.PathMajorPrefix(major)
}

// unescapePath: UnescapePath of an escaped module path.
func unescapePath(e string) answer {
	p, err := module.UnescapePath(e)
	return answer{"path": p, "err": errText(err)}
}

// version: the semver and module views of a (decoded) version string, and the escaping rules
// applied to it both as a decoded and as an escaped version.
func version(v string) answer {
	esc, escErr := module.EscapeVersion(v)
	unesc, unescErr := module.UnescapeVersion(v)
	return answer{
		"valid":        boolText(semver.IsValid(v)),
		"canonical":    module.CanonicalVersion(v),
		"major":        semver.Major(v),
		"prerelease":   semver.Prerelease(v),
		"build":        semver.Build(v),
		"pseudo":       boolText(module.IsPseudoVersion(v)),
		"escaped":      esc,
		"escape_err":   errText(escErr),
		"unescaped":    unesc,
		"unescape_err": errText(unescErr),
	}
}

// major: CheckPathMajor(version, pathMajor of path) and Check(path, version).
func major(p, v string) answer {
	_, pathMajor, _ := module.SplitPathVersion(p)
	return answer{
		"major_err": errText(module.CheckPathMajor(v, pathMajor)),
		"check_err": errText(module.Check(p, v)),
	}
}

// compare: semver.Compare.
func compare(a, b string) answer {
	return answer{"cmp": strconv.Itoa(semver.Compare(a, b))}
}

// proxyRequest: what the go command makes of an escaped path and an escaped version: whether
// each unescapes, whether the version is canonical, and module.Check of the pair.
func proxyRequest(ep, ev string) answer {
	p, perr := module.UnescapePath(ep)
	v, verr := module.UnescapeVersion(ev)
	a := answer{"path": p, "path_err": errText(perr), "version": v, "version_err": errText(verr)}
	if perr == nil && verr == nil {
		a["canonical"] = boolText(module.CanonicalVersion(v) == v)
		a["check_err"] = errText(module.Check(p, v))
	}
	return a
}

// zipFile: whether the go command accepts a module zip: zip.CheckZip, then what zip.Unzip
// checks while extracting (every file's content within its declared size, read through
// archive/zip, which also checks sizes and CRCs), then dirhash.HashZip for its h1 hash.
// Unzip itself is not called: creating thousands of files per zip would dominate the run.
//
// "unassigned" names the Unicode version of Go's tables when an entry name holds a code point
// that version does not assign (the proxy's tables may be newer).
func zipFile(file, p, v string) answer {
	a := answer{"unassigned": unassigned(file)}
	m := module.Version{Path: p, Version: v}
	if _, err := zip.CheckZip(m, file); err != nil {
		a["err"] = "CheckZip: " + errText(err)
	} else if err := readFiles(file); err != nil {
		a["err"] = "Unzip: " + errText(err)
	} else if h, err := dirhash.HashZip(file, dirhash.Hash1); err != nil {
		a["err"] = "HashZip: " + errText(err)
	} else {
		a["h1"] = h
	}
	return a
}

// assigned holds every general category: a rune in none of them is unassigned.
var assigned = []*unicode.RangeTable{
	unicode.L, unicode.M, unicode.N, unicode.P, unicode.S, unicode.Z,
	unicode.Cc, unicode.Cf, unicode.Co, unicode.Cs,
}

func unassigned(file string) string {
	z, err := stdzip.OpenReader(file)
	if err != nil {
		return ""
	}
	defer z.Close()
	for _, zf := range z.File {
		for _, r := range zf.Name {
			if r != utf8.RuneError && !unicode.IsOneOf(assigned, r) {
				return unicode.Version
			}
		}
	}
	return ""
}

// readFiles reads every file (not directory) of a zip the way zip.Unzip does.
func readFiles(file string) error {
	z, err := stdzip.OpenReader(file)
	if err != nil {
		return err
	}
	defer z.Close()
	for _, zf := range z.File {
		if strings.HasSuffix(zf.Name, "/") {
			continue
		}
		r, err := zf.Open()
		if err != nil {
			return err
		}
		lr := &io.LimitedReader{R: r, N: int64(zf.UncompressedSize64) + 1}
		_, err = io.Copy(io.Discard, lr)
		r.Close()
		if err != nil {
			return err
		}
		if lr.N <= 0 {
			return fmt.Errorf("uncompressed size of file %s is larger than declared size (%d bytes)", zf.Name, zf.UncompressedSize64)
		}
	}
	return nil
}

func serve(in io.Reader, out io.Writer) error {
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	w := bufio.NewWriter(out)
	enc := json.NewEncoder(w)
	for sc.Scan() {
		var r request
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return fmt.Errorf("bad request %q: %v", sc.Text(), err)
		}
		var a answer
		switch r.Op {
		case "path":
			a = path(r.A)
		case "unescape_path":
			a = unescapePath(r.A)
		case "version":
			a = version(r.A)
		case "major":
			a = major(r.A, r.B)
		case "compare":
			a = compare(r.A, r.B)
		case "request":
			a = proxyRequest(r.A, r.B)
		case "zip":
			a = zipFile(r.A, r.B, r.C)
		default:
			return fmt.Errorf("unknown op %q", r.Op)
		}
		if err := enc.Encode(a); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	return w.Flush()
}

func main() {
	if err := serve(os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "xmod:", err)
		os.Exit(1)
	}
}
