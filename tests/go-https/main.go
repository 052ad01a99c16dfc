// Built and driven by tests/tests/attach_https_go.rs: "server" or "client URL...".
package main

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
)

func main() {
	if os.Args[1] == "server" {
		s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Println("LOG", r.Method, r.URL.Path)
			if r.URL.Path == "/missing" {
				http.NotFound(w, r)
				return
			}
			io.WriteString(w, "hello "+r.URL.Path)
		}))
		s.StartTLS()
		fmt.Println("PORT", s.Listener.Addr().String())
		select {}
	}
	if os.Getenv("WAIT") != "" {
		fmt.Println("ready")
		bufio.NewReader(os.Stdin).ReadString('\n')
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
	c := &http.Client{Transport: tr}
	for _, u := range os.Args[2:] {
		r, err := c.Get(u)
		if err != nil {
			fmt.Println("ERR", err)
			os.Exit(1)
		}
		io.Copy(io.Discard, r.Body)
		r.Body.Close()
		fmt.Println("STATUS", r.StatusCode)
	}
}
