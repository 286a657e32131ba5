// Command dockerfloor is the Docker floor scripts/bench-linux sets
// erlab's container labs beside: the time dockerd itself takes to create
// and start N containers of an image with no network (as erlab creates
// its linux nodes: the same capabilities, a name and labels), on the same
// number of workers as erlab's deploy, and nothing else; then to remove
// them (force, with their anonymous volumes). It prints both times in
// seconds: deploy destroy.
//
// Usage: dockerfloor -n N [-workers W] [-image IMAGE] [-prefix P]   (root)
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"runtime"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"golang.org/x/sync/errgroup"

	"github.com/erlab-dev/erlab/nodes"
)

func main() {
	n := flag.Int("n", 50, "containers")
	workers := flag.Int("workers", 4*runtime.NumCPU(), "workers: erlab deploy's default")
	image := flag.String("image", "erlab/busybox:3", "a local image")
	prefix := flag.String("prefix", "erlab-dockerfloor.", "container name prefix")
	flag.Parse()
	if err := run(*n, *workers, *image, *prefix); err != nil {
		fmt.Fprintln(os.Stderr, "dockerfloor:", err)
		os.Exit(1)
	}
}

func run(n, workers int, image, prefix string) error {
	ctx := context.Background()
	c, err := client.New(client.FromEnv)
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := c.ImageInspect(ctx, image); err != nil {
		return fmt.Errorf("image %s: %w (scripts/images builds it)", image, err)
	}
	name := func(i int) string { return fmt.Sprintf("%sn%d", prefix, i) }
	remove := func(i int) error {
		_, err := c.ContainerRemove(ctx, name(i), client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
		return err
	}
	defer func() { // whatever happened, leave nothing behind
		for i := range n {
			remove(i)
		}
	}()
	each := func(fn func(i int) error) error {
		var g errgroup.Group
		g.SetLimit(workers)
		for i := range n {
			g.Go(func() error { return fn(i) })
		}
		return g.Wait()
	}
	start := time.Now()
	if err := each(func(i int) error {
		res, err := c.ContainerCreate(ctx, client.ContainerCreateOptions{
			Name:       name(i),
			Config:     &container.Config{Image: image, Labels: map[string]string{"erlab.dockerfloor": "1"}},
			HostConfig: &container.HostConfig{NetworkMode: "none", CapAdd: nodes.ContainerCaps},
		})
		if err != nil {
			return err
		}
		_, err = c.ContainerStart(ctx, res.ID, client.ContainerStartOptions{})
		return err
	}); err != nil {
		return err
	}
	deploy := time.Since(start)
	start = time.Now()
	if err := each(remove); err != nil {
		return err
	}
	fmt.Printf("%.2f %.2f\n", deploy.Seconds(), time.Since(start).Seconds())
	return nil
}
