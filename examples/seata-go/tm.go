package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/seata/seata-go/pkg/client"
	"github.com/seata/seata-go/pkg/protocol/message"
	"github.com/seata/seata-go/pkg/tm"
)

// tmReport is what the tm role prints.
type tmReport struct {
	OK       int64            `json:"ok"`
	Failed   int64            `json:"failed"`
	Seconds  float64          `json:"seconds"`
	PerSec   float64          `json:"perSec"`
	XIDs     []string         `json:"xids,omitempty"`
	Statuses map[string]int64 `json:"statuses,omitempty"`
	Errors   []string         `json:"errors,omitempty"`
}

var errRollback = errors.New("rollback requested")

func runTM(ctx context.Context, fs *flag.FlagSet, args []string) error {
	config := fs.String("config", "", "seata-go client configuration (seatago.yml)")
	svcs := fs.String("svc", "", "comma-separated base URLs of the TCC services to call")
	mode := fs.String("mode", "commit", "commit or rollback")
	n := fs.Int("n", 1, "transactions to run (when -duration is 0)")
	dur := fs.Duration("duration", 0, "run for this long instead of -n transactions")
	conc := fs.Int("c", 1, "concurrent transactions")
	hold := fs.Duration("hold", 0, "pause after the services' Try, before commit or rollback")
	timeout := fs.Duration("timeout", time.Minute, "global transaction timeout")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *mode != "commit" && *mode != "rollback" {
		return fmt.Errorf("tm: -mode %q: want commit or rollback", *mode)
	}
	var urls []string
	if *svcs != "" {
		urls = strings.Split(*svcs, ",")
	}
	client.InitPath(*config)
	quietLogs()
	hc := &http.Client{Timeout: 30 * time.Second}

	var (
		rep    = tmReport{Statuses: map[string]int64{}}
		mu     sync.Mutex
		ok, ko atomic.Int64
		next   atomic.Int64
	)
	var deadline time.Time
	if *dur > 0 {
		deadline = time.Now().Add(*dur)
	}
	one := func() {
		c := tm.InitSeataContext(ctx)
		err := tm.WithGlobalTx(c, &tm.GtxConfig{Name: "strata-example", Timeout: *timeout}, func(c context.Context) error {
			xid := tm.GetXID(c)
			for _, u := range urls {
				req, _ := http.NewRequestWithContext(c, http.MethodPost, u+"/try", nil)
				req.Header.Set("xid", xid)
				resp, err := hc.Do(req)
				if err != nil {
					return err
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					return fmt.Errorf("%s: %s: %s", u, resp.Status, body)
				}
			}
			time.Sleep(*hold)
			if *mode == "rollback" {
				return errRollback
			}
			return nil
		})
		xid := tm.GetXID(c)
		var status message.GlobalStatus
		if tx := tm.GetTx(c); tx != nil {
			status = tx.TxStatus
		}
		wantErr := *mode == "rollback"
		good := (err == nil) != wantErr
		if wantErr && err != nil && !strings.Contains(err.Error(), errRollback.Error()) {
			good = false
		}
		if good {
			ok.Add(1)
		} else {
			ko.Add(1)
		}
		mu.Lock()
		rep.Statuses[fmt.Sprint(status)]++
		if len(rep.XIDs) < 100 && xid != "" {
			rep.XIDs = append(rep.XIDs, xid)
		}
		if !good && len(rep.Errors) < 10 {
			rep.Errors = append(rep.Errors, fmt.Sprint(err))
		}
		mu.Unlock()
	}
	start := time.Now()
	var wg sync.WaitGroup
	for range *conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				if deadline.IsZero() {
					if next.Add(1) > int64(*n) {
						return
					}
				} else if time.Now().After(deadline) {
					return
				}
				one()
			}
		}()
	}
	wg.Wait()
	rep.Seconds = time.Since(start).Seconds()
	rep.OK, rep.Failed = ok.Load(), ko.Load()
	rep.PerSec = float64(rep.OK) / rep.Seconds
	// seata-go logs to stdout too: the report is the line marked REPORT.
	b, err := json.Marshal(rep)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(os.Stdout, "REPORT %s\n", b)
	return err
}
