package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// buildBeluga builds cmd/beluga once into dir and returns its path.
func buildBeluga(t *testing.T, dir string) string {
	t.Helper()
	return buildTagged(t, dir, "beluga", "")
}

// buildTagged builds cmd/beluga with the build tags (comma-separated; ""
// for none) into dir/name and returns its path.
func buildTagged(t *testing.T, dir, name, tags string) string {
	t.Helper()
	bin := filepath.Join(dir, name)
	if runtime.GOOS == "windows" {
		bin += ".exe"
	}
	cmd := exec.Command("go", "build", "-tags", tags, "-o", bin, "./cmd/beluga")
	cmd.Dir = filepath.Join("..", "..")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// freePort returns a TCP port on 127.0.0.1 nobody listens on now.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// proc is one running beluga process: its output lines are kept and can
// be waited for.
type proc struct {
	t    *testing.T
	name string
	cmd  *exec.Cmd
	log  *os.File

	mu    sync.Mutex
	lines []string
	grew  chan struct{}
	done  chan struct{}
	err   error
}

// start runs bin args… with env added to the test's environment. Its
// combined output goes to dir/name.log (kept for a failing test) and is
// scanned line by line.
func start(t *testing.T, dir, name, bin string, env []string, args ...string) *proc {
	t.Helper()
	lf, err := os.Create(filepath.Join(dir, name+".log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	pw.Close()
	p := &proc{t: t, name: name, cmd: cmd, log: lf, grew: make(chan struct{}), done: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 1<<16), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(lf, line)
			p.mu.Lock()
			p.lines = append(p.lines, line)
			close(p.grew)
			p.grew = make(chan struct{})
			p.mu.Unlock()
		}
		pr.Close()
	}()
	go func() {
		err := cmd.Wait()
		p.mu.Lock()
		p.err = err
		p.mu.Unlock()
		close(p.done)
	}()
	t.Cleanup(func() { p.stop(syscall.SIGKILL) })
	return p
}

// wait returns the first submatches of re in a line printed from line
// from on, waiting up to within; it fails the test if none comes.
func (p *proc) wait(re *regexp.Regexp, within time.Duration) []string {
	p.t.Helper()
	deadline := time.After(within)
	seen := 0
	for {
		p.mu.Lock()
		lines, grew := p.lines[seen:], p.grew
		seen = len(p.lines)
		p.mu.Unlock()
		for _, l := range lines {
			if m := re.FindStringSubmatch(l); m != nil {
				return m
			}
		}
		select {
		case <-grew:
		case <-p.done:
			p.mu.Lock()
			more := len(p.lines) > seen
			p.mu.Unlock()
			if !more {
				p.t.Fatalf("%s exited (%v) before printing %q:\n%s", p.name, p.err, re, p.output())
			}
		case <-deadline:
			p.t.Fatalf("%s printed no %q within %v:\n%s", p.name, re, within, p.output())
		}
	}
}

// output is the process's output so far (its last 150 lines).
func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	l := p.lines
	if len(l) > 150 {
		l = l[len(l)-150:]
	}
	return strings.Join(l, "\n")
}

// stop sends sig and waits (up to 20 s) for the process to exit.
func (p *proc) stop(sig syscall.Signal) {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	p.log.Close()
}

// run runs bin args… to completion with env and returns its stdout; a
// non-zero exit fails the test with the command's stderr.
func run(t *testing.T, bin string, env []string, args ...string) string {
	t.Helper()
	out, err := runErr(bin, env, args...)
	if err != nil {
		t.Fatalf("beluga %s: %v", strings.Join(args, " "), err)
	}
	return out
}

// runErr runs bin args… and returns stdout, or an error holding stderr.
func runErr(bin string, env []string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%v\nstdout: %s\nstderr: %s", err, stdout.String(), stderr.String())
	}
	return stdout.String(), nil
}
