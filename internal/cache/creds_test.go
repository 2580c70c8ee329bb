package cache

import (
	"fmt"
	"testing"
	"testing/synctest"
	"time"
)

const rolePath = "/latest/meta-data/iam/security-credentials/my-role"

// credsBody is a credentials document as IMDS writes it.
func credsBody(key string, expires time.Time) string {
	return fmt.Sprintf(`{
  "Code" : "Success",
  "LastUpdated" : "2024-05-01T10:00:00Z",
  "Type" : "AWS-HMAC",
  "AccessKeyId" : %q,
  "SecretAccessKey" : "secret-%s",
  "Token" : "token-%s",
  "Expiration" : %q
}`, key, key, key, expires.UTC().Format(time.RFC3339))
}

// Credentials are served verbatim until shortly before Expiration,
// revalidated in the background, refreshed ahead of Expiration, and
// while IMDS still gives the same ones in the refresh window the refresh
// backs off with jitter instead of asking on every read.
func TestCredentialsRefreshAhead(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		expires := time.Now().Add(time.Hour).Truncate(time.Second)
		old := credsBody("ASIAOLD", expires)
		f := newFake(map[string]fakeAnswer{rolePath: {status: 200, body: old}})
		cache := newTestCache(t, f, testConfig())
		read := func(want Outcome) string {
			t.Helper()
			_, body, o := get(t, cache, rolePath)
			if o != want {
				t.Fatalf("%s, want %s", o, want)
			}
			synctest.Wait()
			return body
		}
		if read(Miss) != old {
			t.Fatal("credentials not served verbatim")
		}
		read(Hit)
		// Revalidated every CredRevalidate: the read is served, the refresh runs behind it.
		time.Sleep(CredRevalidate + time.Second)
		read(Hit)
		if n := f.count(rolePath); n != 2 {
			t.Fatalf("revalidation: %d upstream reads, want 2", n)
		}
		// Inside the refresh window (from Expiration - CredAhead), IMDS has not rotated.
		time.Sleep(time.Until(expires) - CredAhead + time.Second)
		read(Hit)
		if n := f.count(rolePath); n != 3 {
			t.Fatalf("refresh ahead: %d upstream reads, want 3", n)
		}
		for range 20 { // same AccessKeyId: no asking again on each read
			read(Hit)
		}
		if n := f.count(rolePath); n != 3 {
			t.Fatalf("same AccessKeyId: %d upstream reads after 20 more reads, want 3", n)
		}
		time.Sleep(credRetry + time.Second) // the first back-off is at most credRetry
		read(Hit)
		if n := f.count(rolePath); n != 4 {
			t.Fatalf("after the back-off: %d upstream reads, want 4", n)
		}
		time.Sleep(credRetry - time.Second) // the second back-off is at least credRetry
		read(Hit)
		if n := f.count(rolePath); n != 4 {
			t.Fatalf("inside the second back-off: %d upstream reads, want 4", n)
		}
		// IMDS rotates: the next refresh picks the new ones up, served verbatim.
		rotated := credsBody("ASIANEW", time.Now().Add(6*time.Hour))
		f.set(rolePath, fakeAnswer{status: 200, body: rotated})
		time.Sleep(2 * credRetry)
		if read(Hit) != old {
			t.Fatal("the read that starts the refresh is answered with what is held")
		}
		if read(Hit) != rotated {
			t.Fatal("rotated credentials not served after the refresh")
		}
	})
}

// Past Expiration - CredMargin credentials are no longer a hit; when IMDS
// fails they are served stale, but never past their Expiration, however
// long the grace.
func TestCredentialsNeverServedExpired(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		expires := time.Now().Add(20 * time.Minute)
		f := newFake(map[string]fakeAnswer{rolePath: {status: 200, body: credsBody("ASIA1", expires)}})
		cfg := testConfig()
		cfg.StaleGrace.Duration = time.Hour // longer than CredMargin: Expiration ends them, not the grace
		cache := newTestCache(t, f, cfg)
		get(t, cache, rolePath)
		synctest.Wait()
		time.Sleep(20*time.Minute - CredMargin + time.Second)
		f.fail(errDown, 0)
		if code, _, o := get(t, cache, rolePath); code != 200 || o != Stale {
			t.Fatalf("IMDS down %v before Expiration: %d %s, want the held credentials (stale)", CredMargin, code, o)
		}
		time.Sleep(CredMargin)
		if _, o, err := cache.FetchOutcome(t.Context(), "GET", rolePath); err == nil || o == Stale {
			t.Fatalf("IMDS down past Expiration: %s %v, want an error", o, err)
		}
	})
}

// Credentials that IMDS hands out already inside the last minutes are held
// only long enough to coalesce reads.
func TestCredentialsAboutToExpire(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(map[string]fakeAnswer{rolePath: {status: 200, body: credsBody("ASIA1", time.Now().Add(2*time.Minute))}})
		cache := newTestCache(t, f, testConfig())
		get(t, cache, rolePath)
		if _, _, o := get(t, cache, rolePath); o != Hit {
			t.Fatalf("within MinTTL: %s, want hit", o)
		}
		time.Sleep(MinTTL + time.Millisecond)
		if _, _, o := get(t, cache, rolePath); o != Miss {
			t.Fatalf("after MinTTL: %s, want miss", o)
		}
	})
}
