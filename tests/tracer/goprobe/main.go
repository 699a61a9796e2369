package main

import (
	"fmt"
	"os"
	"os/exec"
	"sync"
	"syscall"
)

// Static Go probe (CGO_ENABLED=0): raw SYSCALL instructions, many threads,
// os/exec through clone(CLONE_VM|CLONE_VFORK), openat from os.ReadFile.
// Run under tracer_harness; see its policy.
func main() {
	if len(os.Args) > 2 && os.Args[1] == "opens" {
		os.Exit(opens(os.Args[2]))
	}
	if len(os.Args) > 1 && os.Args[1] == "child" {
		ppid, _, _ := syscall.RawSyscall(syscall.SYS_GETPPID, 0, 0, 0)
		fmt.Printf("child getppid=%d\n", ppid)
		os.Exit(4)
	}
	var wg sync.WaitGroup
	bad := 0
	var mu sync.Mutex
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 20; j++ {
				p, _, _ := syscall.Syscall(syscall.SYS_GETPPID, 0, 0, 0)
				if p != 4242 {
					mu.Lock(); bad++; mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	data, err := os.ReadFile("/mt-probe/original")
	fmt.Printf("goroutines bad=%d read=%q err=%v\n", bad, string(data), err)
	cmd := exec.Command("/proc/self/exe", "child")
	cmd.Stdout = os.Stdout
	err = cmd.Run()
	fmt.Printf("os/exec child: %v\n", err)
	if bad != 0 || string(data) != "rewritten-ok\n" || cmd.ProcessState.ExitCode() != 4 {
		os.Exit(1)
	}
}

// opens: 8 goroutines reading the rewritten path concurrently (os.ReadFile:
// openat through Go's own raw syscall), n times each; exits 0 if every read
// saw the rewritten content.
func opens(arg string) int {
	var n int
	fmt.Sscan(arg, &n)
	var wg sync.WaitGroup
	var mu sync.Mutex
	bad := 0
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < n; i++ {
				data, err := os.ReadFile("/mt-probe/original")
				if err != nil || string(data) != "rewritten-ok\n" {
					mu.Lock()
					bad++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	fmt.Printf("go opens: 8 goroutines x %d reads of the rewritten path, bad=%d\n", n, bad)
	if bad != 0 {
		return 1
	}
	return 0
}
