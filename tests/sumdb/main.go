// Command sumdb is a local Go checksum database for tests.
//
// It hashes every module zip in a GOPROXY-layout directory at startup
// (<escaped module>/@v/<escaped version>.zip and .mod), appends one record per
// module version to an in-memory transparency log, signs tree heads with a
// freshly generated key, and serves the checksum database protocol with the
// reference server from golang.org/x/mod/sumdb, both at the root (for
// GOSUMDB="name+key URL") and under /sumdb/<name>/ (standing in for a proxy
// that serves the database; /sumdb/<name>/supported answers 200).
//
// The verifier key is written to -keyfile; the listening URL is printed on
// stdout once the server accepts connections.
package main

import (
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"golang.org/x/mod/module"
	"golang.org/x/mod/sumdb"
	"golang.org/x/mod/sumdb/dirhash"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// memLog is a ServerOps over an in-memory log built once at startup.
type memLog struct {
	signer note.Signer

	mu      sync.Mutex
	records [][]byte
	hashes  []tlog.Hash
	index   map[module.Version]int64
	// pending holds records added to the log on first lookup (-lazy), so that
	// the tree grows while a client uses it.
	pending map[module.Version][]byte
}

type hashSlice []tlog.Hash

func (h hashSlice) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, 0, len(indexes))
	for _, i := range indexes {
		if i < 0 || i >= int64(len(h)) {
			return nil, fmt.Errorf("hash index %d out of range", i)
		}
		out = append(out, h[i])
	}
	return out, nil
}

func (l *memLog) add(m module.Version, record []byte) error {
	id := int64(len(l.records))
	stored, err := tlog.StoredHashesForRecordHash(id, tlog.RecordHash(record), hashSlice(l.hashes))
	if err != nil {
		return err
	}
	l.records = append(l.records, record)
	l.hashes = append(l.hashes, stored...)
	l.index[m] = id
	return nil
}

func (l *memLog) Signed(ctx context.Context) ([]byte, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := int64(len(l.records))
	h, err := tlog.TreeHash(n, hashSlice(l.hashes))
	if err != nil {
		return nil, err
	}
	return note.Sign(&note.Note{Text: string(tlog.FormatTree(tlog.Tree{N: n, Hash: h}))}, l.signer)
}

func (l *memLog) ReadRecords(ctx context.Context, id, n int64) ([][]byte, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if id < 0 || n < 0 || id+n > int64(len(l.records)) {
		return nil, fs.ErrNotExist
	}
	return l.records[id : id+n], nil
}

func (l *memLog) Lookup(ctx context.Context, m module.Version) (int64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	id, ok := l.index[m]
	if ok {
		return id, nil
	}
	record, ok := l.pending[m]
	if !ok {
		return 0, fs.ErrNotExist
	}
	delete(l.pending, m)
	if err := l.add(m, record); err != nil {
		return 0, err
	}
	return l.index[m], nil
}

func (l *memLog) ReadTileData(ctx context.Context, t tlog.Tile) ([]byte, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return tlog.ReadTileData(t, hashSlice(l.hashes))
}

// goSumLines computes the two go.sum lines for the zip at zipPath and the
// go.mod at modPath.
func goSumLines(m module.Version, zipPath, modPath string) ([]byte, error) {
	zh, err := dirhash.HashZip(zipPath, dirhash.Hash1)
	if err != nil {
		return nil, err
	}
	mod, err := os.ReadFile(modPath)
	if err != nil {
		return nil, err
	}
	mh, err := dirhash.Hash1([]string{"go.mod"}, func(string) (io.ReadCloser, error) {
		return io.NopCloser(strings.NewReader(string(mod))), nil
	})
	if err != nil {
		return nil, err
	}
	return fmt.Appendf(nil, "%s %s %s\n%s %s/go.mod %s\n", m.Path, m.Version, zh, m.Path, m.Version, mh), nil
}

// scan finds every <escaped module>/@v/<escaped version>.zip under dir.
func scan(dir string) (map[module.Version][2]string, error) {
	found := make(map[module.Version][2]string)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || !strings.HasSuffix(p, ".zip") {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		escMod, file, ok := strings.Cut(rel, "/@v/")
		if !ok || strings.Contains(file, "/") {
			return nil
		}
		path, err := module.UnescapePath(escMod)
		if err != nil {
			return fmt.Errorf("%s: %v", rel, err)
		}
		vers, err := module.UnescapeVersion(strings.TrimSuffix(file, ".zip"))
		if err != nil {
			return fmt.Errorf("%s: %v", rel, err)
		}
		found[module.Version{Path: path, Version: vers}] = [2]string{p, strings.TrimSuffix(p, ".zip") + ".mod"}
		return nil
	})
	return found, err
}

func main() {
	dir := flag.String("dir", "", "GOPROXY-layout directory with the module zips and go.mod files")
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on")
	name := flag.String("name", "sumdb.test", "checksum database name")
	keyfile := flag.String("keyfile", "", "file to write the verifier key to")
	verbose := flag.Bool("v", false, "log every record added")
	lazy := flag.Bool("lazy", false, "add each record to the log on its first lookup instead of at startup")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("sumdb: ")
	if *dir == "" {
		log.Fatal("-dir is required")
	}

	skey, vkey, err := note.GenerateKey(rand.Reader, *name)
	if err != nil {
		log.Fatal(err)
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		log.Fatal(err)
	}
	if *keyfile != "" {
		if err := os.WriteFile(*keyfile, []byte(vkey+"\n"), 0o644); err != nil {
			log.Fatal(err)
		}
	}

	found, err := scan(*dir)
	if err != nil {
		log.Fatal(err)
	}
	versions := make([]module.Version, 0, len(found))
	for m := range found {
		versions = append(versions, m)
	}
	sort.Slice(versions, func(i, j int) bool { return versions[i].String() < versions[j].String() })

	db := &memLog{signer: signer, index: make(map[module.Version]int64), pending: make(map[module.Version][]byte)}
	for _, m := range versions {
		files := found[m]
		record, err := goSumLines(m, files[0], files[1])
		if err != nil {
			log.Fatalf("%s: %v", m, err)
		}
		if *lazy {
			db.pending[m] = record
			continue
		}
		if err := db.add(m, record); err != nil {
			log.Fatalf("%s: %v", m, err)
		}
		if *verbose {
			log.Printf("record %d: %s", db.index[m], strings.ReplaceAll(strings.TrimSpace(string(record)), "\n", "; "))
		}
	}
	log.Printf("%d records", len(versions))

	srv := sumdb.NewServer(db)
	mux := http.NewServeMux()
	for _, p := range sumdb.ServerPaths {
		mux.Handle(p, srv)
	}
	prefix := "/sumdb/" + *name
	mux.HandleFunc(prefix+"/supported", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
	})
	mux.Handle(prefix+"/", http.StripPrefix(prefix, srv))

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("http://%s\n", ln.Addr())
	os.Stdout.Sync()
	log.Fatal(http.Serve(ln, mux))
}
