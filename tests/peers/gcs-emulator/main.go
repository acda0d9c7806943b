// Command gcs-emulator runs fake-gcs-server (as a library) behind a small front that adds the
// parts of the GCS XML API the Rust object_store crate speaks and upstream fake-gcs-server lacks:
// object PUT (with the x-goog-if-generation-match precondition), object DELETE, and XML
// multipart uploads. Each is translated to the emulator's own JSON API in-process, so objects,
// generations and preconditions are the emulator's; GET, HEAD and listing go to it unchanged.
// (object_store's CI uses a fork of fake-gcs-server with an XML API; the module proxy does not
// serve that fork, hence this front.)
//
// Usage: gcs-emulator -addr 127.0.0.1:0 -bucket NAME. Prints "listening on http://HOST:PORT"
// once it serves.
package main

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
	"sync"

	"github.com/fsouza/fake-gcs-server/fakestorage"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address (port 0 picks a free port)")
	bucket := flag.String("bucket", "", "bucket to create at start")
	flag.Parse()

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	host := ln.Addr().String()
	srv, err := fakestorage.NewServerWithOptions(fakestorage.Options{
		NoListener: true,
		Scheme:     "http",
		PublicHost: host,
		Writer:     io.Discard,
	})
	if err != nil {
		log.Fatal(err)
	}
	if *bucket != "" {
		srv.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: *bucket})
	}
	f := &front{inner: srv.HTTPHandler(), uploads: map[string]*upload{}}
	fmt.Printf("listening on http://%s\n", host)
	log.Fatal(http.Serve(ln, f))
}

type front struct {
	inner   http.Handler
	mu      sync.Mutex
	next    int
	uploads map[string]*upload
}

// upload is an XML multipart upload in progress: its parts by number.
type upload struct {
	bucket, object string
	parts          map[int][]byte
}

// The emulator's own routes; everything else with a bucket and an object is the XML API.
var jsonPrefixes = []string{"/storage/", "/upload/", "/download/", "/batch/", "/_internal/"}

func (f *front) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	bucket, object, ok := xmlObject(r)
	if !ok || r.Method == http.MethodGet || r.Method == http.MethodHead {
		f.inner.ServeHTTP(w, r)
		return
	}
	q := r.URL.Query()
	switch {
	case r.Method == http.MethodPost && q.Has("uploads"):
		f.initiate(w, bucket, object)
	case r.Method == http.MethodPut && q.Has("uploadId"):
		f.putPart(w, r, q)
	case r.Method == http.MethodPost && q.Has("uploadId"):
		f.complete(w, r, q.Get("uploadId"))
	case r.Method == http.MethodDelete && q.Has("uploadId"):
		f.mu.Lock()
		delete(f.uploads, q.Get("uploadId"))
		f.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	case r.Method == http.MethodPut && r.Header.Get("x-goog-copy-source") != "":
		http.Error(w, "gcs-emulator: copy is not emulated", http.StatusNotImplemented)
	case r.Method == http.MethodPut:
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		f.store(w, bucket, object, body, r.Header.Get("x-goog-if-generation-match"), r.Header.Get("Content-Type"))
	case r.Method == http.MethodDelete:
		path := "/storage/v1/b/" + url.PathEscape(bucket) + "/o/" + url.PathEscape(object)
		rec := f.call(http.MethodDelete, path, nil, "")
		w.WriteHeader(rec.Code)
	default:
		f.inner.ServeHTTP(w, r)
	}
}

// xmlObject splits an XML-API path /BUCKET/OBJECT (object percent-encoded, '/' included).
func xmlObject(r *http.Request) (bucket, object string, ok bool) {
	p := r.URL.EscapedPath()
	for _, prefix := range jsonPrefixes {
		if strings.HasPrefix(p, prefix) {
			return "", "", false
		}
	}
	b, o, found := strings.Cut(strings.TrimPrefix(p, "/"), "/")
	if !found || b == "" || o == "" {
		return "", "", false
	}
	bucket, err1 := url.PathUnescape(b)
	object, err2 := url.PathUnescape(o)
	return bucket, object, err1 == nil && err2 == nil
}

// call runs one request against the emulator in-process.
func (f *front) call(method, target string, body []byte, contentType string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, target, bytes.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	rec := httptest.NewRecorder()
	f.inner.ServeHTTP(rec, req)
	return rec
}

// store writes an object through the emulator's media upload, which checks ifGenerationMatch
// atomically, and answers as the XML API does: ETag and x-goog-generation headers, no body.
func (f *front) store(w http.ResponseWriter, bucket, object string, body []byte, ifGen, contentType string) {
	q := url.Values{"uploadType": {"media"}, "name": {object}}
	if ifGen != "" {
		q.Set("ifGenerationMatch", ifGen)
	}
	rec := f.call(http.MethodPost, "/upload/storage/v1/b/"+url.PathEscape(bucket)+"/o?"+q.Encode(), body, contentType)
	if rec.Code != http.StatusOK {
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
		return
	}
	var obj struct {
		Etag       string `json:"etag"`
		Generation int64  `json:"generation,string"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &obj); err != nil {
		http.Error(w, "gcs-emulator: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("ETag", fmt.Sprintf("%q", obj.Etag))
	w.Header().Set("x-goog-generation", fmt.Sprint(obj.Generation))
	w.WriteHeader(http.StatusOK)
}

func (f *front) initiate(w http.ResponseWriter, bucket, object string) {
	f.mu.Lock()
	f.next++
	id := fmt.Sprintf("upload-%d", f.next)
	f.uploads[id] = &upload{bucket: bucket, object: object, parts: map[int][]byte{}}
	f.mu.Unlock()
	writeXML(w, struct {
		XMLName  xml.Name `xml:"InitiateMultipartUploadResult"`
		Bucket   string
		Key      string
		UploadId string
	}{Bucket: bucket, Key: object, UploadId: id})
}

func (f *front) putPart(w http.ResponseWriter, r *http.Request, q url.Values) {
	var n int
	if _, err := fmt.Sscan(q.Get("partNumber"), &n); err != nil {
		http.Error(w, "bad partNumber", http.StatusBadRequest)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	u := f.uploads[q.Get("uploadId")]
	if u != nil {
		u.parts[n] = body
	}
	f.mu.Unlock()
	if u == nil {
		http.Error(w, "no such upload", http.StatusNotFound)
		return
	}
	sum := md5.Sum(body)
	w.Header().Set("ETag", fmt.Sprintf("%q", hex.EncodeToString(sum[:])))
	w.WriteHeader(http.StatusOK)
}

// complete joins the parts the request lists, in order, into one object written in one go: the
// object appears whole or not at all, as with the real service.
func (f *front) complete(w http.ResponseWriter, r *http.Request, id string) {
	var req struct {
		Parts []struct {
			PartNumber int
		} `xml:"Part"`
	}
	if err := xml.NewDecoder(r.Body).Decode(&req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	u := f.uploads[id]
	delete(f.uploads, id)
	f.mu.Unlock()
	if u == nil {
		http.Error(w, "no such upload", http.StatusNotFound)
		return
	}
	sort.Slice(req.Parts, func(i, j int) bool { return req.Parts[i].PartNumber < req.Parts[j].PartNumber })
	var all []byte
	for _, p := range req.Parts {
		part, ok := u.parts[p.PartNumber]
		if !ok {
			http.Error(w, fmt.Sprintf("no part %d", p.PartNumber), http.StatusBadRequest)
			return
		}
		all = append(all, part...)
	}
	rec := httptest.NewRecorder()
	f.store(rec, u.bucket, u.object, all, "", "")
	if rec.Code != http.StatusOK {
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
		return
	}
	w.Header().Set("x-goog-generation", rec.Header().Get("x-goog-generation"))
	writeXML(w, struct {
		XMLName xml.Name `xml:"CompleteMultipartUploadResult"`
		Bucket  string
		Key     string
		ETag    string
	}{Bucket: u.bucket, Key: u.object, ETag: rec.Header().Get("ETag")})
}

func writeXML(w http.ResponseWriter, v any) {
	out, err := xml.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/xml")
	_, _ = w.Write(append([]byte(xml.Header), out...))
}
