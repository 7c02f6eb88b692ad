// Package pluginpb is the generated code of plugin.proto, the protocol
// between exed and its plugin processes. Regenerate it with go generate
// (Debian's protobuf-compiler, and protoc-gen-go and protoc-gen-go-grpc at
// the versions the Makefile's generate target installs); make test fails
// when the committed code differs from what the .proto generates.
package pluginpb

//go:generate protoc --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative plugin.proto
