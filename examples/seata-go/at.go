package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	_ "github.com/go-sql-driver/mysql"
	"github.com/seata/seata-go/pkg/client"
	seatasql "github.com/seata/seata-go/pkg/datasource/sql"
	"github.com/seata/seata-go/pkg/tm"
)

// The undo log table seata-go's AT mode writes before images to
// (seata-go testdata/sql/undo_log.sql), and the example's table.
var atSchema = []string{
	"CREATE TABLE IF NOT EXISTS undo_log (" +
		"id BIGINT NOT NULL AUTO_INCREMENT, branch_id BIGINT NOT NULL, xid VARCHAR(100) NOT NULL, " +
		"context VARCHAR(128) NOT NULL, rollback_info LONGBLOB NOT NULL, log_status INT NOT NULL, " +
		"log_created DATETIME NOT NULL, log_modified DATETIME NOT NULL, ext VARCHAR(100) DEFAULT NULL, " +
		"PRIMARY KEY (id), UNIQUE KEY ux_undo_log (xid, branch_id)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
	"CREATE TABLE IF NOT EXISTS account (id INT NOT NULL PRIMARY KEY, balance INT NOT NULL) ENGINE=InnoDB",
	"INSERT IGNORE INTO account VALUES (1, 100), (2, 100)",
}

// atReport is what the at role prints.
type atReport struct {
	XIDs      []string `json:"xids"`
	Errors    []string `json:"errors"` // one per transaction, "" when it succeeded
	Balance1  int      `json:"balance1"`
	UndoLeft  int      `json:"undoLeft"` // undo_log rows of these transactions
	WaitedFor string   `json:"waitedFor,omitempty"`
}

func runAT(ctx context.Context, fs *flag.FlagSet, args []string) error {
	config := fs.String("config", "", "seata-go client configuration (seatago.yml)")
	dsn := fs.String("dsn", "", "go-sql-driver/mysql DSN of the database")
	op := fs.String("op", "commit", "commit, rollback or conflict (AT mode); xa-commit or xa-rollback (XA mode)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	raw, err := sql.Open("mysql", *dsn)
	if err != nil {
		return err
	}
	defer raw.Close()
	for _, s := range atSchema {
		if _, err := raw.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("at: schema: %w", err)
		}
	}
	client.InitPath(*config)
	quietLogs()
	registerJacksonAlias()
	driver := seatasql.SeataATMySQLDriver
	if strings.HasPrefix(*op, "xa-") {
		driver = seatasql.SeataXAMySQLDriver
	}
	db, err := sql.Open(driver, *dsn)
	if err != nil {
		return err
	}
	defer db.Close()

	debit := func(ctx context.Context) error {
		_, err := db.ExecContext(ctx, "UPDATE account SET balance = balance - 10 WHERE id = ?", 1)
		return err
	}
	gtx := func(body func(context.Context) error) (string, error) {
		c := tm.InitSeataContext(ctx)
		err := tm.WithGlobalTx(c, &tm.GtxConfig{Name: "strata-example-at", Timeout: time.Minute}, body)
		return tm.GetXID(c), err
	}
	var rep atReport
	add := func(xid string, err error) {
		rep.XIDs = append(rep.XIDs, xid)
		rep.Errors = append(rep.Errors, errText(err))
	}
	switch *op {
	case "commit", "xa-commit":
		add(gtx(debit))
	case "rollback", "xa-rollback":
		add(gtx(func(c context.Context) error {
			if err := debit(c); err != nil {
				return err
			}
			return errRollback
		}))
	case "conflict":
		// The first transaction holds row 1's global lock (its local
		// transaction is already committed) while the second debits the
		// same row: the second's branch registration must be refused.
		locked, release := make(chan struct{}), make(chan struct{})
		first := make(chan error, 1)
		var firstXID string
		go func() {
			xid, err := gtx(func(c context.Context) error {
				if err := debit(c); err != nil {
					close(locked)
					return err
				}
				close(locked)
				<-release
				return nil
			})
			firstXID = xid
			first <- err
		}()
		<-locked
		xid2, err2 := gtx(debit)
		close(release)
		err1 := <-first
		add(firstXID, err1)
		add(xid2, err2)
	default:
		return fmt.Errorf("at: -op %q: want commit, rollback or conflict", *op)
	}

	if err := raw.QueryRowContext(ctx, "SELECT balance FROM account WHERE id = 1").Scan(&rep.Balance1); err != nil {
		return err
	}
	// Phase two of an AT commit runs after the TM's answer: wait (bounded)
	// for the undo log to be cleaned up.
	start := time.Now()
	for {
		rep.UndoLeft = 0
		for _, x := range rep.XIDs {
			var n int
			if err := raw.QueryRowContext(ctx, "SELECT COUNT(*) FROM undo_log WHERE xid = ?", x).Scan(&n); err != nil {
				return err
			}
			rep.UndoLeft += n
		}
		if rep.UndoLeft == 0 || time.Since(start) > 15*time.Second {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	rep.WaitedFor = time.Since(start).Round(time.Millisecond).String()
	b, err := json.Marshal(rep)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(os.Stdout, "REPORT %s\n", b)
	return err
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
