// Command ferretdb runs FerretDB v1, a MongoDB wire-protocol server, with its SQLite backend,
// for the MongoDB storage tests. It embeds FerretDB's public package rather than building its
// command: that command insists on version files its release process generates, which the
// module does not carry.
//
// Usage: ferretdb -dir DIR [-addr 127.0.0.1:0]. Prints "listening on mongodb://HOST:PORT/"
// once it serves; stops on SIGTERM or SIGINT.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func main() {
	dir := flag.String("dir", "", "existing directory for the SQLite databases")
	addr := flag.String("addr", "127.0.0.1:0", "listen address (port 0 picks a free port)")
	flag.Parse()
	abs, err := filepath.Abs(*dir)
	if err != nil || *dir == "" {
		log.Fatalf("-dir: an existing directory is required (%v)", err)
	}
	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: *addr},
		Handler:   "sqlite",
		SQLiteURL: "file:" + abs + "/",
		Logger:    slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	done := make(chan struct{})
	go func() {
		_ = f.Run(ctx)
		close(done)
	}()
	// Blocks until the listener is up.
	fmt.Printf("listening on %s\n", f.MongoDBURI())
	<-done
}
