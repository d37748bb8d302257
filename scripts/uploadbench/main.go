// Command uploadbench measures one upload over loopback: it joins the
// community at -addr with an invite, asks for a ticket and PUTs -size
// random bytes, then prints the throughput and the server's CPU time
// (from /proc of -pid) spent meanwhile.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/iotad/iotad/api/client"
	icrypto "github.com/iotad/iotad/crypto"
)

func cpu(pid int) time.Duration {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		log.Fatal(err)
	}
	f := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+2:]))
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+s) * 10 * time.Millisecond
}

func main() {
	addr := flag.String("addr", "127.0.0.1:1984", "iotad")
	invite := flag.String("invite", "", "invite text")
	pid := flag.Int("pid", 0, "iotad's pid")
	size := flag.Int("size", 25<<20, "bytes")
	runs := flag.Int("runs", 5, "uploads")
	flag.Parse()
	ctx := context.Background()
	m, err := client.Dial(ctx, "ws://"+*addr+"/", nil)
	if err != nil {
		log.Fatal(err)
	}
	_, priv, _ := icrypto.GenerateKey(rand.Reader)
	if _, err := m.LoginCommunity(ctx, uuid.NewString(), priv, *invite, nil); err != nil {
		log.Fatal(err)
	}
	for range *runs {
		body := make([]byte, *size)
		rand.Read(body)
		r, err := m.Function(ctx, "text", "General", "general", "upload", map[string]any{"name": "big.bin", "size": *size})
		if err != nil {
			log.Fatal(err)
		}
		res, _ := r.Result()
		var tk struct{ URL string }
		json.Unmarshal(res.Payload, &tk)
		c0, t0 := cpu(*pid), time.Now()
		req, _ := http.NewRequest(http.MethodPut, "http://"+*addr+tk.URL, bytes.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 200 {
			log.Fatalf("upload: %v %v", resp, err)
		}
		resp.Body.Close()
		el, c := time.Since(t0), cpu(*pid)-c0
		fmt.Printf("%d bytes in %v: %.0f MB/s, server CPU %v (%.0f%% of one core)\n", *size, el.Round(time.Millisecond),
			float64(*size)/1e6/el.Seconds(), c, 100*c.Seconds()/el.Seconds())
	}
}
