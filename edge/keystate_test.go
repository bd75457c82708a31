package edge

import (
	"path/filepath"
	"testing"
	"time"
)

// TestRemovedConfigKeyStaysRemoved: a config key revoked through the admin
// API (DELETE /v1/admin/keys/{app}) does not come back when the edge
// restarts with the same config; set again, it is back.
func TestRemovedConfigKeyStaysRemoved(t *testing.T) {
	state := filepath.Join(t.TempDir(), "keys.yaml")
	apps := []App{{Name: "shop", Secret: "0123456789abcdef0123"}, {Name: "ops", Secret: "fedcba9876543210fedc", Admin: true}}
	kr, err := newKeyring(apps, state)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := kr.remove("shop"); !ok || err != nil {
		t.Fatalf("remove: %v %v", ok, err)
	}
	kr, err = newKeyring(apps, state)
	if err != nil {
		t.Fatal(err)
	}
	if kr.get("shop") != nil {
		t.Fatal("the removed key came back after a restart")
	}
	if kr.get("ops") == nil {
		t.Fatal("another key was lost")
	}
	if err := kr.set("shop", KeyUpdate{Secret: "a-new-secret-0123456"}, time.Now()); err != nil {
		t.Fatal(err)
	}
	kr, err = newKeyring(apps, state)
	if err != nil {
		t.Fatal(err)
	}
	if k := kr.get("shop"); k == nil || string(k.secret) != "a-new-secret-0123456" {
		t.Fatalf("set again after removal: %+v", k)
	}
}
