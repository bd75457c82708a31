package config

import (
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"time"
)

// IDService connects the proxy to Strata's ID service (package idserver):
// a row inserted into a sharded table without its shard-key column gets its
// key from the service, from the table's sequence (Table.Sequence).
type IDService struct {
	// Addrs are the gRPC addresses (host:port) of the service's nodes; any
	// subset works, all of them fail over best. Empty (the default): no ID
	// service, and an INSERT that leaves out the shard key is refused with
	// error 1235.
	Addrs []string `yaml:"addrs"`
	// Timeout bounds how long a statement waits for its keys; past it the
	// client gets an error and nothing is inserted. Keys usually come from
	// a local buffer, so only a statement that finds the buffer empty
	// waits. Default 5s: longer than a leader election of the service.
	Timeout time.Duration `yaml:"timeout"`
	// Batch is how many IDs the proxy fetches at a time per sequence, at
	// first; the batch doubles while batches last under half a second, up
	// to MaxBatch. IDs fetched and not used when the proxy stops are lost:
	// gaps, never repeats. Defaults 1000 and 100000.
	Batch    uint64 `yaml:"batch"`
	MaxBatch uint64 `yaml:"max_batch"`
}

// DefaultIDService is IDService's defaults: no addresses, so no ID service.
func DefaultIDService() IDService {
	return IDService{Timeout: 5 * time.Second, Batch: 1000, MaxBatch: 100000}
}

// Enabled reports whether an ID service is configured.
func (s IDService) Enabled() bool { return len(s.Addrs) > 0 }

// validate checks the id_service section.
func (s *IDService) validate() error {
	f := func(name, format string, args ...any) error {
		return fieldErr("id_service."+name, format, args...)
	}
	seen := map[string]bool{}
	for i, a := range s.Addrs {
		name := fmt.Sprintf("addrs[%d]", i)
		if err := checkAddr(a); err != nil {
			return f(name, "%v (the gRPC address of an ID service node)", err)
		}
		if seen[a] {
			return f(name, "%s is listed twice", a)
		}
		seen[a] = true
	}
	switch {
	case s.Timeout <= 0:
		return f("timeout", "must be positive, e.g. 5s")
	case s.Batch < 1:
		return f("batch", "%d, need at least 1", s.Batch)
	case s.MaxBatch < s.Batch:
		return f("max_batch", "%d is below batch %d", s.MaxBatch, s.Batch)
	}
	return nil
}

// sequenceTag is the ID service's rule for tag names (idserver's checkTag;
// config may not import idserver, so it is repeated here).
var sequenceTag = regexp.MustCompile(`^[A-Za-z0-9_.:-]{1,64}$`)

// DefaultSequence is the sequence of a sharded table that names none:
// "<db>.<table>".
func DefaultSequence(db, table string) string { return db + "." + table }

// Sequences returns, for every sharded table (after brace expansion), the
// ID service tag its generated keys come from: database -> table -> tag.
// Call it on a validated Config.
func (c *Config) Sequences() map[string]map[string]string {
	out, _ := c.sequences()
	return out
}

// sequences builds Sequences and checks every tag: one set in the file
// always, the defaults only when an ID service is configured (a name the
// service cannot take matters only when keys are generated).
func (c *Config) sequences() (map[string]map[string]string, error) {
	out := map[string]map[string]string{}
	// Sorted: the first error is the same on every run.
	for _, db := range slices.Sorted(maps.Keys(c.Databases)) {
		d := c.Databases[db]
		if d == nil || !d.Sharded {
			continue
		}
		for _, tn := range slices.Sorted(maps.Keys(d.Tables)) {
			t := d.Tables[tn]
			p := "databases." + db + ".tables." + tn + ".sequence"
			if t == nil {
				continue
			}
			if t.Kind != "sharded" {
				if t.Sequence != "" {
					return nil, fieldErr(p, "only a sharded table has generated keys (this one is %s)", t.Kind)
				}
				continue
			}
			if t.Sequence != "" && !sequenceTag.MatchString(t.Sequence) {
				return nil, fieldErr(p, "%q: a sequence is 1 to 64 letters, digits and _-.:", t.Sequence)
			}
			names, err := expandName(tn)
			if errors.Is(err, errNoBrace) {
				names = []string{tn}
			} else if err != nil {
				return nil, fieldErr("databases."+db+".tables."+tn, "%v", err)
			}
			for _, n := range names {
				tag := t.Sequence
				if tag == "" {
					tag = DefaultSequence(db, n)
					if c.IDService.Enabled() && !sequenceTag.MatchString(tag) {
						return nil, fieldErr(p, "the default sequence %q of table %s is not a valid ID service tag (1 to 64 letters, digits and _-.:): name one", tag, n)
					}
				}
				if out[db] == nil {
					out[db] = map[string]string{}
				}
				out[db][n] = tag
			}
		}
	}
	return out, nil
}
