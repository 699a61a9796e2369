// go_client: a static Go (CGO_ENABLED=0) client for the e2e tests. Go's own
// resolver and runtime threads, no libc; run under mirrord-trace it must see
// the pod's DNS, network and environment.
//
//	go_client http HOST PORT PATH N   N goroutines GET http://HOST:PORT/PATH in
//	                                  parallel; prints "i STATUS BODY" per request,
//	                                  in index order, then "ok N" or exits 1
//	go_client resolve NAME            the addresses of NAME, sorted, one a line
//	go_client udp HOST PORT MSG       sends MSG to HOST:PORT over UDP, prints
//	                                  "reply MSG from ADDR"
//	go_client env                     the environment, sorted, one a line
//	go_client cat PATH                PATH's content (os.ReadFile: openat, fstat, read)
//	go_client ls DIR                  DIR's entries, sorted, one a line; "/" after a
//	                                  directory, "@" after a symlink (getdents64 types)
//	go_client stat PATH               "SIZE MTIME" of PATH (newfstatat)
//	go_client fstat PATH              "SIZE MTIME MODE UID GID NLINK" of PATH opened
//	                                  (File.Stat: the fstat syscall), as musl_fs's
//	go_client getwd DIR SUB           os.Getwd after os.Chdir(DIR), then after
//	                                  File.Chdir (fchdir) to SUB: "chdir DIR'",
//	                                  "fchdir SUB'" with what Getwd returned
//	go_client serve NAME ADDR LOG     an HTTP server for the incoming-traffic tests
//	                                  (as tests/programs/in_server.py): listens on ADDR
//	                                  (":8080", "[::1]:8080"), prints "ready PORT" with
//	                                  the port the listener reports, answers "NAME PATH",
//	                                  and appends "METHOD PATH BODY_LENGTH BODY_SHA1 PEER_IP"
//	                                  (the SHA-1 cut to 12 hex digits) to LOG per request
package main

import (
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

func usage() {
	fmt.Fprintln(os.Stderr, "usage: go_client http HOST PORT PATH N | resolve NAME | udp HOST PORT MSG | env | cat PATH | ls DIR | stat PATH | fstat PATH | getwd DIR SUB | serve NAME ADDR LOG")
	os.Exit(2)
}

func doHTTP(host, port, path string, n int) int {
	client := &http.Client{
		Timeout: 20 * time.Second,
		// One fresh connection per request: each goroutine really dials.
		Transport: &http.Transport{DisableKeepAlives: true},
	}
	url := "http://" + net.JoinHostPort(host, port) + "/" + strings.TrimPrefix(path, "/")
	results := make([]string, n)
	failed := 0
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			res := ""
			resp, err := client.Get(url)
			if err == nil {
				var body []byte
				body, err = io.ReadAll(resp.Body)
				resp.Body.Close()
				res = fmt.Sprintf("%d %d %s", i, resp.StatusCode, strings.TrimSpace(string(body)))
			}
			if err != nil {
				res = fmt.Sprintf("%d error %v", i, err)
				mu.Lock()
				failed++
				mu.Unlock()
			}
			results[i] = res
		}(i)
	}
	wg.Wait()
	for _, r := range results {
		fmt.Println(r)
	}
	if failed > 0 {
		fmt.Printf("failed %d of %d\n", failed, n)
		return 1
	}
	fmt.Printf("ok %d\n", n)
	return 0
}

func doResolve(name string) int {
	addrs, err := net.LookupHost(name)
	if err != nil {
		fmt.Fprintln(os.Stderr, "resolve:", err)
		return 1
	}
	sort.Strings(addrs)
	for _, a := range addrs {
		fmt.Println(a)
	}
	return 0
}

func doUDP(host, port, msg string) int {
	conn, err := net.Dial("udp", net.JoinHostPort(host, port))
	if err != nil {
		fmt.Fprintln(os.Stderr, "udp dial:", err)
		return 1
	}
	defer conn.Close()
	buf := make([]byte, 2048)
	// UDP may drop a datagram: retry a bounded number of times.
	for try := 0; try < 5; try++ {
		if _, err := conn.Write([]byte(msg)); err != nil {
			fmt.Fprintln(os.Stderr, "udp write:", err)
			return 1
		}
		conn.SetReadDeadline(time.Now().Add(time.Second))
		n, err := conn.Read(buf)
		if err == nil {
			fmt.Printf("reply %s from %s\n", buf[:n], conn.RemoteAddr())
			return 0
		}
	}
	fmt.Fprintln(os.Stderr, "udp: no reply")
	return 1
}

// doFS runs one of the file probes; the same three exist in every client
// (musl_fs.c, py_client.py, node_client.js) with the same output.
func doFS(op, path string) int {
	switch op {
	case "cat":
		b, err := os.ReadFile(path)
		if err != nil {
			fmt.Fprintln(os.Stderr, "cat:", err)
			return 1
		}
		os.Stdout.Write(b)
	case "ls":
		ents, err := os.ReadDir(path)
		if err != nil {
			fmt.Fprintln(os.Stderr, "ls:", err)
			return 1
		}
		for _, e := range ents {
			suffix := ""
			if e.IsDir() {
				suffix = "/"
			} else if e.Type()&os.ModeSymlink != 0 {
				suffix = "@"
			}
			fmt.Println(e.Name() + suffix)
		}
	case "stat":
		st, err := os.Stat(path)
		if err != nil {
			fmt.Fprintln(os.Stderr, "stat:", err)
			return 1
		}
		fmt.Println(st.Size(), st.ModTime().Unix())
	case "fstat":
		// File.Stat is the fstat syscall on the open fd.
		f, err := os.Open(path)
		var st os.FileInfo
		if err == nil {
			st, err = f.Stat()
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "fstat:", err)
			return 1
		}
		sys := st.Sys().(*syscall.Stat_t)
		fmt.Printf("%d %d %o %d %d %d\n", st.Size(), st.ModTime().Unix(), sys.Mode&0o7777,
			sys.Uid, sys.Gid, sys.Nlink)
	}
	return 0
}

// doGetwd shows os.Getwd after a chdir and after an fchdir. Getwd trusts
// $PWD when it stats as the same file as "."; otherwise it asks getcwd.
func doGetwd(dir, sub string) int {
	if err := os.Chdir(dir); err != nil {
		fmt.Fprintln(os.Stderr, "getwd:", err)
		return 1
	}
	wd, err := os.Getwd()
	fmt.Println("chdir", wd, err)
	f, err := os.Open(sub)
	if err == nil {
		err = f.Chdir()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "getwd:", err)
		return 1
	}
	wd, err = os.Getwd()
	fmt.Println("fchdir", wd, err)
	return 0
}

// doServe is the Go app of the incoming-traffic tests: net/http over a
// listener from net.Listen (Go's own socket, bind, listen and accept4 calls,
// no libc), keep-alive on, one log line per request.
func doServe(name, addr, logPath string) int {
	logf, err := os.OpenFile(logPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		fmt.Fprintln(os.Stderr, "serve:", err)
		return 1
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "serve:", err)
		return 1
	}
	var mu sync.Mutex
	handler := func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		sum := sha1.Sum(body)
		peer, _, _ := net.SplitHostPort(r.RemoteAddr)
		mu.Lock()
		fmt.Fprintf(logf, "%s %s %d %s %s\n", r.Method, r.RequestURI, len(body),
			hex.EncodeToString(sum[:])[:12], peer)
		mu.Unlock()
		out := fmt.Sprintf("%s %s\n", name, r.RequestURI)
		w.Header().Set("Content-Length", strconv.Itoa(len(out)))
		io.WriteString(w, out)
	}
	fmt.Println("ready", ln.Addr().(*net.TCPAddr).Port)
	err = http.Serve(ln, http.HandlerFunc(handler))
	fmt.Fprintln(os.Stderr, "serve:", err)
	return 1
}

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	switch os.Args[1] {
	case "http":
		if len(os.Args) != 6 {
			usage()
		}
		n, err := strconv.Atoi(os.Args[5])
		if err != nil || n < 1 || n > 1000 {
			usage()
		}
		os.Exit(doHTTP(os.Args[2], os.Args[3], os.Args[4], n))
	case "resolve":
		if len(os.Args) != 3 {
			usage()
		}
		os.Exit(doResolve(os.Args[2]))
	case "udp":
		if len(os.Args) != 5 {
			usage()
		}
		os.Exit(doUDP(os.Args[2], os.Args[3], os.Args[4]))
	case "cat", "ls", "stat", "fstat":
		if len(os.Args) != 3 {
			usage()
		}
		os.Exit(doFS(os.Args[1], os.Args[2]))
	case "getwd":
		if len(os.Args) != 4 {
			usage()
		}
		os.Exit(doGetwd(os.Args[2], os.Args[3]))
	case "serve":
		if len(os.Args) != 5 {
			usage()
		}
		os.Exit(doServe(os.Args[2], os.Args[3], os.Args[4]))
	case "env":
		env := os.Environ()
		sort.Strings(env)
		for _, e := range env {
			fmt.Println(e)
		}
	default:
		usage()
	}
}
