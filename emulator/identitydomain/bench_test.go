package identitydomain_test

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"testing"

	"github.com/iamflow/iamflow/emulator/identitydomain"
)

var large = identitydomain.GenerateConfig{Users: 50000, Groups: 5000, Memberships: 200000, Seed: 1}

// BenchmarkGenerate builds the 50,000-user, 5,000-group, 200,000-membership directory.
func BenchmarkGenerate(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		d, err := identitydomain.New(baseConfig())
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if err := d.Generate(large); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		d.Close()
		b.StartTimer()
	}
}

func largeDomain(b *testing.B) (*identitydomain.Domain, string) {
	b.Helper()
	d := start(b, baseConfig())
	if err := d.Generate(large); err != nil {
		b.Fatal(err)
	}
	return d, getToken(b, d)
}

// BenchmarkListUsersPaged reads all 50,000 users over HTTP in pages of 1000
// (one op = 50 requests), with the default attributes.
func BenchmarkListUsersPaged(b *testing.B) {
	d, tok := largeDomain(b)
	client := &http.Client{}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		for start := 1; start <= large.Users; start += 1000 {
			get(b, client, fmt.Sprintf("%s/admin/v1/Users?startIndex=%d&count=1000", d.URL(), start), tok)
		}
	}
	b.ReportMetric(float64(large.Users)*float64(b.N)/b.Elapsed().Seconds(), "users/s")
}

// BenchmarkListUsersFilter compares an indexed filter with a full scan of 50,000 users.
func BenchmarkListUsersFilter(b *testing.B) {
	d, tok := largeDomain(b)
	client := &http.Client{}
	for name, f := range map[string]string{
		"indexed userName eq":  `userName eq "user025000"`,
		"indexed groups.value": `groups.value eq "` + d.Groups()[17].ID + `"`,
		"scan displayName co":  `displayName co "lovelace" and active eq false`,
	} {
		b.Run(name, func(b *testing.B) {
			u := d.URL() + "/admin/v1/Users?count=100&filter=" + url.QueryEscape(f)
			b.ReportAllocs()
			for b.Loop() {
				get(b, client, u, tok)
			}
		})
	}
}

// BenchmarkCreateUser is the emulator's write throughput over HTTP, a
// baseline for benchmarks of the services that call it.
func BenchmarkCreateUser(b *testing.B) {
	d := start(b, baseConfig())
	tok := getToken(b, d)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		r := call(b, http.MethodPost, d.URL()+"/admin/v1/Users", tok, userBody(fmt.Sprintf("bench%d@example.com", i)))
		if r.status != http.StatusCreated {
			b.Fatalf("create: %d", r.status)
		}
	}
}

func get(b *testing.B, client *http.Client, u, tok string) {
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := client.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		b.Fatalf("GET %s: %d", u, resp.StatusCode)
	}
}
