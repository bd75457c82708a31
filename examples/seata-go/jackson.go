package main

import (
	"reflect"
	"unsafe"

	"github.com/seata/seata-go/pkg/datasource/sql/undo/parser"
)

// jacksonAlias is seata-go's JSON undo-log parser under the name
// "jackson". seata-go v1.2.0 writes every undo log with the serializer
// name hard-coded to "jackson" (pkg/datasource/sql/undo/base/undo.go) but
// registers its only parser as "json", so AT mode fails with "undo log
// parser type jackson not found" whatever the configuration says
// (apache/incubator-seata-go#658, fixed after v1.2.0 by #690). The
// application works around it without changing seata-go: it adds the JSON
// parser under the other name to seata-go's parser cache before the first
// transaction.
type jacksonAlias struct{ parser.JsonParser }

func (*jacksonAlias) GetName() string { return "jackson" }

// registerJacksonAlias reaches into the cache's unexported map: seata-go
// v1.2.0 exports no way to add a parser.
func registerJacksonAlias() {
	f := reflect.ValueOf(parser.GetCache()).Elem().FieldByName("serializerNameToParser")
	m := *(*map[string]parser.UndoLogParser)(unsafe.Pointer(f.UnsafeAddr()))
	if _, ok := m["jackson"]; !ok {
		m["jackson"] = &jacksonAlias{}
	}
}
