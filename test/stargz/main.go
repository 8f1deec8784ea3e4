// Command stargz-grpc serves the stargz snapshotter (Debian's
// golang-github-containerd-stargz-snapshotter-dev sources) to containerd as a
// proxy snapshotter over the snapshot gRPC API on a unix socket. It is the
// lazy-pulling node of berth's end-to-end tests: the CRI keychain and the
// Kubernetes parts of the upstream daemon are left out, registry hosts come
// from a containerd hosts directory (hosts.toml), so a node can name berth as
// its mirror exactly the way `ctr --hosts-dir` does.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	snapshotsapi "github.com/containerd/containerd/api/services/snapshots/v1"
	"github.com/containerd/containerd/contrib/snapshotservice"
	"github.com/containerd/containerd/log"
	"github.com/containerd/containerd/reference"
	"github.com/containerd/containerd/remotes/docker"
	dconfig "github.com/containerd/containerd/remotes/docker/config"
	"github.com/containerd/stargz-snapshotter/service"
	"github.com/pelletier/go-toml"
	"github.com/sirupsen/logrus"
	"google.golang.org/grpc"
)

func main() {
	address := flag.String("address", "", "unix socket to serve the snapshot API on")
	root := flag.String("root", "", "directory for snapshots, layer caches and FUSE mount points")
	configPath := flag.String("config", "", "optional TOML file with the snapshotter's settings (service.Config)")
	hostsDir := flag.String("hosts-dir", "", "optional containerd hosts directory (DIR/<registry>/hosts.toml)")
	logLevel := flag.String("log-level", "info", "logrus level: debug, info, warn, error")
	flag.Parse()
	if *address == "" || *root == "" {
		fmt.Fprintln(os.Stderr, "stargz-grpc: --address and --root are required")
		os.Exit(2)
	}
	level, err := logrus.ParseLevel(*logLevel)
	if err != nil {
		fmt.Fprintf(os.Stderr, "stargz-grpc: %v\n", err)
		os.Exit(2)
	}
	logrus.SetLevel(level)
	if err := run(*address, *root, *configPath, *hostsDir); err != nil {
		fmt.Fprintf(os.Stderr, "stargz-grpc: %v\n", err)
		os.Exit(1)
	}
}

func run(address, root, configPath, hostsDir string) error {
	ctx, cancel := context.WithCancel(log.WithLogger(context.Background(), log.L))
	defer cancel()

	var config service.Config
	if configPath != "" {
		tree, err := toml.LoadFile(configPath)
		if err != nil {
			return fmt.Errorf("reading %s: %w", configPath, err)
		}
		if err := tree.Unmarshal(&config); err != nil {
			return fmt.Errorf("parsing %s: %w", configPath, err)
		}
	}

	var opts []service.Option
	if hostsDir != "" {
		// The same lookup containerd's own resolver does for `ctr --hosts-dir`,
		// so the node and its snapshotter agree on the mirror and its fallback.
		hosts := dconfig.ConfigureHosts(ctx, dconfig.HostOptions{HostDir: dconfig.HostDirFromRoot(hostsDir)})
		opts = append(opts, service.WithCustomRegistryHosts(func(ref reference.Spec) ([]docker.RegistryHost, error) {
			return hosts(ref.Hostname())
		}))
	}

	if err := os.MkdirAll(root, 0o700); err != nil {
		return err
	}
	sn, err := service.NewStargzSnapshotterService(ctx, root, &config, opts...)
	if err != nil {
		return fmt.Errorf("starting the snapshotter: %w", err)
	}
	defer sn.Close()

	if err := os.MkdirAll(filepath.Dir(address), 0o700); err != nil {
		return err
	}
	if err := os.Remove(address); err != nil && !os.IsNotExist(err) {
		return err
	}
	listener, err := net.Listen("unix", address)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", address, err)
	}
	server := grpc.NewServer()
	snapshotsapi.RegisterSnapshotsServer(server, snapshotservice.FromSnapshotter(sn))

	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-signals
		server.Stop()
	}()
	log.G(ctx).WithField("address", address).Info("serving the stargz snapshotter")
	return server.Serve(listener)
}
