package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/seata/seata-go/pkg/client"
	"github.com/seata/seata-go/pkg/rm/tcc"
	"github.com/seata/seata-go/pkg/tm"
)

// action is one TCC service. Its Confirm and Cancel are idempotent through
// the events file: a branch already finished is not finished again, but
// every call is logged ("confirm-call") so tests see how often the TC asked.
type action struct {
	name  string
	delay time.Duration

	mu   sync.Mutex
	f    *os.File
	done map[string]bool // "confirm xid branch", "cancel xid branch"
}

func (a *action) GetActionName() string { return a.name }

func (a *action) Prepare(ctx context.Context, params interface{}) (bool, error) {
	a.log("try", tm.GetXID(ctx), 0)
	return true, nil
}

func (a *action) Commit(ctx context.Context, bac *tm.BusinessActionContext) (bool, error) {
	time.Sleep(a.delay)
	return true, a.finish("confirm", bac.Xid, bac.BranchId)
}

func (a *action) Rollback(ctx context.Context, bac *tm.BusinessActionContext) (bool, error) {
	return true, a.finish("cancel", bac.Xid, bac.BranchId)
}

func (a *action) finish(kind, xid string, branch int64) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := a.logLocked(kind+"-call", xid, branch); err != nil {
		return err
	}
	key := fmt.Sprintf("%s %s %d", kind, xid, branch)
	if a.done[key] {
		return nil
	}
	if err := a.logLocked(kind, xid, branch); err != nil {
		return err
	}
	a.done[key] = true
	return nil
}

func (a *action) log(kind, xid string, branch int64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.logLocked(kind, xid, branch)
}

func (a *action) logLocked(kind, xid string, branch int64) error {
	_, err := fmt.Fprintf(a.f, "%s %s %d\n", kind, xid, branch)
	return err
}

// load reads the branches already finished by an earlier run of the
// service (it may have been killed and restarted).
func (a *action) load(path string) error {
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, _, _ := strings.Cut(sc.Text(), " "); k == "confirm" || k == "cancel" {
			a.done[sc.Text()] = true
		}
	}
	return sc.Err()
}

func runSvc(ctx context.Context, fs *flag.FlagSet, args []string) error {
	config := fs.String("config", "", "seata-go client configuration (seatago.yml)")
	name := fs.String("name", "svc-a", "TCC action name (the branch's resource)")
	listen := fs.String("listen", "127.0.0.1:0", "HTTP address for /try")
	events := fs.String("events", "", "file the service appends its events to")
	delay := fs.Duration("confirm-delay", 0, "pause in every Confirm (to kill a TC during phase two)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *events == "" {
		return fmt.Errorf("svc: -events is required")
	}
	a := &action{name: *name, delay: *delay, done: map[string]bool{}}
	if err := a.load(*events); err != nil {
		return err
	}
	f, err := os.OpenFile(*events, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	a.f = f

	client.InitPath(*config)
	quietLogs()
	proxy, err := tcc.NewTCCServiceProxy(a)
	if err != nil {
		return fmt.Errorf("svc: register TCC resource: %w", err)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /try", func(w http.ResponseWriter, r *http.Request) {
		xid := r.Header.Get("xid")
		if xid == "" {
			http.Error(w, "xid header required", http.StatusBadRequest)
			return
		}
		c := tm.InitSeataContext(r.Context())
		tm.SetXID(c, xid)
		if _, err := proxy.Prepare(c, map[string]interface{}{"amount": 10}); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	// The address goes to stdout once the resource is registered.
	fmt.Printf("LISTENING %s\n", ln.Addr())
	return http.Serve(ln, mux)
}
