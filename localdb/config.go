package localdb

import (
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"path/filepath"
	"time"
)

// Config describes a local topology. The zero value is not usable: call
// DefaultConfig and set Root.
type Config struct {
	// Root is the directory that holds every server's data directory and
	// the topology record. Required.
	Root string
	// Shards is the number of shards, each a primary with Replicas replicas.
	Shards int
	// Replicas per shard; 0 gives primaries only.
	Replicas int
	// BasePort, when non-zero, gives the servers fixed ports BasePort,
	// BasePort+1, ... in order shard by shard, primary first. Zero picks free
	// ports, which is what tests want: two runs never collide.
	BasePort int
	// BufferPoolSize is InnoDB's buffer pool per server. Small keeps many
	// servers cheap; raise it for benchmarks.
	BufferPoolSize string
	// FlushLogAtTrxCommit is innodb_flush_log_at_trx_commit. The default 2
	// writes the log at every commit without fsync: no committed row is lost
	// when a server is killed (the OS keeps the write), only on a machine
	// crash, which local topologies do not survive anyway.
	FlushLogAtTrxCommit int
	// MaxConnections is max_connections per server.
	MaxConnections int
	// ExtraArgs are appended to every mariadbd command line.
	ExtraArgs []string
	// StartTimeout bounds how long one server may take to accept
	// connections after it is started.
	StartTimeout time.Duration
	// StopTimeout bounds a graceful stop; after it the server is killed.
	StopTimeout time.Duration
	// Mariadbd and InstallDB are the server and installer binaries; empty
	// looks them up on PATH and in the usual sbin directories.
	Mariadbd  string
	InstallDB string
	// Logger receives one line per server started or stopped.
	Logger *slog.Logger
}

// DefaultConfig is the topology `strata up` starts: two shards, each a
// primary with one replica, on free ports.
func DefaultConfig() Config {
	return Config{
		Shards:              2,
		Replicas:            1,
		BufferPoolSize:      "32M",
		FlushLogAtTrxCommit: 2,
		MaxConnections:      2000,
		StartTimeout:        30 * time.Second,
		StopTimeout:         20 * time.Second,
	}
}

// Validate reports the first field that is wrong and why.
func (c Config) Validate() error {
	switch {
	case c.Root == "":
		return errors.New("localdb: Config.Root: required")
	case c.Shards < 1:
		return fmt.Errorf("localdb: Config.Shards: %d, need at least 1", c.Shards)
	case c.Replicas < 0:
		return fmt.Errorf("localdb: Config.Replicas: %d, must not be negative", c.Replicas)
	case c.BasePort < 0 || c.BasePort > 65535-c.Shards*(1+c.Replicas):
		return fmt.Errorf("localdb: Config.BasePort: %d leaves no room for %d servers", c.BasePort, c.Shards*(1+c.Replicas))
	case c.FlushLogAtTrxCommit < 0 || c.FlushLogAtTrxCommit > 2:
		return fmt.Errorf("localdb: Config.FlushLogAtTrxCommit: %d, must be 0, 1 or 2", c.FlushLogAtTrxCommit)
	case c.StartTimeout <= 0:
		return errors.New("localdb: Config.StartTimeout: must be positive")
	case c.StopTimeout <= 0:
		return errors.New("localdb: Config.StopTimeout: must be positive")
	}
	return nil
}

// ErrNoMariaDB is returned when mariadbd or mariadb-install-db cannot be
// found. `make deps` installs them on Debian and Ubuntu.
var ErrNoMariaDB = errors.New("localdb: mariadbd not found: install MariaDB 10.11+ (Debian/Ubuntu: apt-get install mariadb-server mariadb-client, or run `make deps`)")

// FindBinaries returns the paths of mariadbd and mariadb-install-db.
func FindBinaries() (mariadbd, installDB string, err error) {
	find := func(names ...string) string {
		for _, n := range names {
			if p, err := exec.LookPath(n); err == nil {
				return p
			}
			for _, dir := range []string{"/usr/sbin", "/usr/local/sbin", "/usr/bin", "/usr/local/bin"} {
				p := filepath.Join(dir, n)
				if _, err := exec.LookPath(p); err == nil {
					return p
				}
			}
		}
		return ""
	}
	mariadbd = find("mariadbd", "mysqld")
	installDB = find("mariadb-install-db", "mysql_install_db")
	if mariadbd == "" || installDB == "" {
		return "", "", ErrNoMariaDB
	}
	return mariadbd, installDB, nil
}
