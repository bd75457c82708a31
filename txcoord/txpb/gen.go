// Package txpb holds the coordinator's protobuf messages and gRPC stubs,
// generated from txcoord.proto. The generated files are committed so that
// building needs no protoc; after changing the .proto, run
//
//	go generate ./txcoord/txpb
//
// with protoc (Debian: protobuf-compiler) and the two plugins installed:
//
//	go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
//	go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.2
package txpb

//go:generate protoc --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative txcoord.proto
