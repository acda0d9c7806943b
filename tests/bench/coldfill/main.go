// Command coldfill exists only for its go.mod: a real dependency graph of well-known libraries
// that the benchmark downloads through each proxy with `go mod download`. It is never run.
package main

import (
	_ "github.com/gin-gonic/gin"
	_ "github.com/go-sql-driver/mysql"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/spf13/cobra"
	_ "github.com/spf13/viper"
	_ "github.com/stretchr/testify/assert"
	_ "go.uber.org/zap"
	_ "golang.org/x/sync/errgroup"
	_ "google.golang.org/grpc"
	_ "gopkg.in/yaml.v3"
)

func main() {}
