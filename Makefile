# aerolithsDB — the two commands are `make run` and `make test`.
GO      ?= go
BIN     := bin/aerolith
DATA    ?= ./data
VERSION := $(shell git describe --always --dirty 2>/dev/null || echo dev)

.PHONY: build run test test-short vet bench fuzz clean

build:
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN) ./cmd/aerolith

# A single node with embedded defaults: HTTP on 127.0.0.1:7070, data in ./data.
run: build
	./$(BIN) server --data-dir $(DATA)

# Everything: vet, unit and integration tests on real dragonboat and pebble, the crash test.
test:
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 14m ./...

# The fast subset (skips the crash test and other long runs).
test-short:
	$(GO) test -count=1 -short ./...

vet:
	$(GO) vet ./...

# Short fuzz runs of every decoder of outside input.
fuzz:
	$(GO) test -run='^$$' -fuzz=FuzzDecodeEvent -fuzztime=30s ./log
	$(GO) test -run='^$$' -fuzz=FuzzDecodeFrame -fuzztime=30s ./log
	$(GO) test -run='^$$' -fuzz=FuzzDecodeCommand -fuzztime=30s ./materializer
	$(GO) test -run='^$$' -fuzz=FuzzMergePatch -fuzztime=30s ./materializer

clean:
	rm -rf bin
