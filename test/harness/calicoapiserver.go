package harness

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rrguard/rrguard/test/harness/scratch"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"
)

// A control plane started with Options.CalicoAPIServer serves projectcalico.org/v3 as clusters
// installed by the tigera-operator do: through calico-apiserver (bin/calico-apiserver, built
// from the pinned module by `make controlplane`), an aggregated API server that runs its own
// admission chain (rrguard's webhooks included) and stores every object as the
// crd.projectcalico.org/v1 CRD, writing it through kube-apiserver as its own service account.
//
// The API server reaches an aggregated server at the addresses of its Service's endpoints,
// which may not be loopback addresses. So calico-apiserver runs in a network namespace of its
// own, joined to the host by a veth pair with addresses of 198.18.0.0/15 (RFC 2544's range
// for tests) that nothing routes: the traffic stays on this machine. From there it reaches
// kube-apiserver, which listens on 127.0.0.1 only, through a forwarder the test process
// runs on the host's end of the pair; a webhook that calico-apiserver must call listens on
// that address too (CalicoAPIServer.HostIP). What calico-apiserver gets is what Calico's
// manifest (manifests/apiserver.yaml of the module) gives it: its Namespace, ServiceAccount,
// Service, RBAC and the APIService v3.projectcalico.org, with a serving certificate for the
// Service's name and the CA in the APIService; kube-apiserver gets the front-proxy flags an
// aggregated API server needs (the --requestheader-* trust, --proxy-client-cert-file/-key-file,
// --enable-aggregator-routing).

// CalicoAPIServer is the calico-apiserver of a control plane (Harness.CalicoAPIServer).
type CalicoAPIServer struct {
	// HostIP is the host's end of the veth pair: the address at which calico-apiserver
	// reaches the host. A webhook calico-apiserver must call listens here (kube-apiserver
	// reaches it there too).
	HostIP string
	// IP is calico-apiserver's address in its network namespace Netns; it serves on IP:Port.
	IP, Netns string
	Port      int
	// PID is calico-apiserver's process.
	PID int
	// Log is what calico-apiserver printed, for failure messages.
	Log *LogBuffer
	// ServiceAccount is the user calico-apiserver writes the crd.projectcalico.org/v1 objects
	// as (system:serviceaccount:calico-apiserver:calico-apiserver).
	ServiceAccount string

	hostLink string
	cmd      *exec.Cmd
	exited   chan struct{}
	forward  net.Listener
	conns    sync.WaitGroup
}

// calicoAPIServerManifest is Calico's manifest for calico-apiserver, in the pinned module.
const calicoAPIServerManifest = "manifests/apiserver.yaml"

// calicoNetnsPrefix names the network namespaces of calico-apiserver: the prefix, the PID of
// the test process and its start time, so that a later run can remove those of a dead one.
const calicoNetnsPrefix = "rrguard-capi-"

// calicoAPIServerPort is the port calico-apiserver serves on, as Calico's manifest runs it.
const calicoAPIServerPort = 5443

// CalicoAPIServerCRDs are what calico-apiserver stores projectcalico.org/v3 objects in: every
// crd.projectcalico.org/v1 CRD of the pinned module (it lists Tiers at start, for one, and
// serves every kind); no projectcalico.org CRD, since calico-apiserver serves that group.
func CalicoAPIServerCRDs(rootDir string) ([]*apiextensionsv1.CustomResourceDefinition, error) {
	dir, err := ModuleDir(rootDir, CalicoModule)
	if err != nil {
		return nil, err
	}
	paths, err := filepath.Glob(filepath.Join(dir, "libcalico-go", "config", "crd", "crd.projectcalico.org_*.yaml"))
	if err != nil {
		return nil, err
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("no crd.projectcalico.org CRD in %s", dir)
	}
	var out []*apiextensionsv1.CustomResourceDefinition
	for _, path := range paths {
		raw, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		crd := &apiextensionsv1.CustomResourceDefinition{}
		if err := yaml.UnmarshalStrict(raw, crd); err != nil {
			return nil, fmt.Errorf("decode %s: %w", path, err)
		}
		out = append(out, crd)
	}
	return out, nil
}

// frontProxyArgs writes a front-proxy CA and the client certificate kube-apiserver presents
// to aggregated API servers into dir, and returns the kube-apiserver flags that use them.
func frontProxyArgs(dir string) (map[string][]string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	ca, err := NewCA("rrguard-front-proxy-ca")
	if err != nil {
		return nil, err
	}
	cert, key, err := ca.issue(&x509.Certificate{
		Subject:     pkix.Name{CommonName: "front-proxy-client"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	if err != nil {
		return nil, err
	}
	files := map[string][]byte{"ca.crt": ca.CertPEM, "client.crt": cert, "client.key": key}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			return nil, err
		}
	}
	return map[string][]string{
		"requestheader-client-ca-file":       {filepath.Join(dir, "ca.crt")},
		"requestheader-allowed-names":        {"front-proxy-client"},
		"requestheader-username-headers":     {"X-Remote-User"},
		"requestheader-group-headers":        {"X-Remote-Group"},
		"requestheader-extra-headers-prefix": {"X-Remote-Extra-"},
		"proxy-client-cert-file":             {filepath.Join(dir, "client.crt")},
		"proxy-client-key-file":              {filepath.Join(dir, "client.key")},
		// Proxy to the Service's endpoints, not its cluster IP: nothing implements Services here.
		"enable-aggregator-routing": {"true"},
	}, nil
}

// issue signs a certificate of tmpl (its subject, names and usages) with a fresh key, valid
// for a day, and returns it and its key in PEM.
func (ca *CA) issue(tmpl *x509.Certificate) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl.SerialNumber = big.NewInt(time.Now().UnixNano())
	tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return nil, nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), nil
}

// WriteServingFor writes tls.crt and tls.key for the given DNS names and IP addresses into
// dir: a webhook served where calico-apiserver reaches it (CalicoAPIServer.HostIP).
func (ca *CA) WriteServingFor(dir string, dnsNames []string, ips ...net.IP) error {
	cert, key, err := ca.issue(&x509.Certificate{
		Subject: pkix.Name{CommonName: "rrguard-webhook"}, DNSNames: dnsNames, IPAddresses: ips,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "tls.key"), key, 0o600); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "tls.crt"), cert, 0o600)
}

// startCalicoAPIServer starts calico-apiserver in a network namespace of its own and
// registers it as the APIService v3.projectcalico.org; it returns once the API server
// serves projectcalico.org/v3 through it.
func (h *Harness) startCalicoAPIServer(ctx context.Context) (err error) {
	bin := filepath.Join(h.BinDir, "calico-apiserver")
	if fi, statErr := os.Stat(bin); statErr != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
		return fmt.Errorf("%w: calico-apiserver not in %s", ErrMissingBinaries, h.BinDir)
	}
	ipTool, err := lookIP()
	if err != nil {
		return err
	}
	removeDeadNetns(ipTool)
	s := &CalicoAPIServer{Log: &LogBuffer{}, Port: calicoAPIServerPort, exited: make(chan struct{})}
	h.CalicoAPIServer = s
	if err := s.network(ipTool); err != nil {
		return err
	}
	apiURL, err := url.Parse(h.Config.Host)
	if err != nil {
		return err
	}
	if err := s.forwardTo(apiURL.Host); err != nil {
		return err
	}
	objs, err := calicoAPIServerObjects(h.RootDir)
	if err != nil {
		return err
	}
	var apiService *unstructured.Unstructured
	var service, namespace string
	for _, o := range objs {
		switch o.GetKind() {
		case "APIService":
			apiService = o // once calico-apiserver serves
			continue
		case "Service":
			service, namespace = o.GetName(), o.GetNamespace()
		case "ServiceAccount":
			s.ServiceAccount = "system:serviceaccount:" + o.GetNamespace() + ":" + o.GetName()
		}
		if err := h.Client.Create(ctx, o); err != nil {
			return fmt.Errorf("create %s %s from Calico's %s: %w", o.GetKind(), o.GetName(), calicoAPIServerManifest, err)
		}
	}
	if apiService == nil || service == "" || s.ServiceAccount == "" {
		return fmt.Errorf("%s of the pinned Calico module lacks the APIService, Service or ServiceAccount of calico-apiserver", calicoAPIServerManifest)
	}
	dir := filepath.Join(h.workDir, "calico-apiserver")
	if err := os.Mkdir(dir, 0o700); err != nil {
		return err
	}
	kubeconfig, err := h.serviceAccountKubeconfig(ctx, s, dir)
	if err != nil {
		return err
	}
	ca, err := NewCA("calico-apiserver-ca")
	if err != nil {
		return err
	}
	svcName := service + "." + namespace + ".svc"
	cert, key, err := ca.issue(&x509.Certificate{
		Subject: pkix.Name{CommonName: svcName}, DNSNames: []string{svcName, svcName + ".cluster.local"},
		IPAddresses: []net.IP{net.ParseIP(s.IP)}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	if err != nil {
		return err
	}
	for name, data := range map[string][]byte{"tls.crt": cert, "tls.key": key} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			return err
		}
	}
	if err := s.start(ipTool, bin, dir, kubeconfig); err != nil {
		return err
	}
	if err := h.publishEndpoints(ctx, s, service, namespace); err != nil {
		return err
	}
	if err := unstructured.SetNestedField(apiService.Object, base64.StdEncoding.EncodeToString(ca.CertPEM), "spec", "caBundle"); err != nil {
		return err
	}
	if err := h.Client.Create(ctx, apiService); err != nil {
		return fmt.Errorf("create APIService %s: %w", apiService.GetName(), err)
	}
	return h.awaitCalicoAPIServer(ctx, s, apiService.GetName())
}

// calicoAPIServerObjects reads Calico's manifest for calico-apiserver: every object but the
// Deployment (the test runs the process) and the NetworkPolicy (nothing enforces it here).
func calicoAPIServerObjects(rootDir string) ([]*unstructured.Unstructured, error) {
	dir, err := ModuleDir(rootDir, CalicoModule)
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, calicoAPIServerManifest)
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(raw), 4096)
	var out []*unstructured.Unstructured
	for {
		u := &unstructured.Unstructured{}
		if err := dec.Decode(&u.Object); errors.Is(err, io.EOF) {
			return out, nil
		} else if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		switch u.GetKind() {
		case "", "Deployment", "NetworkPolicy":
			continue
		}
		out = append(out, u)
	}
}

// serviceAccountKubeconfig writes a kubeconfig into dir with which calico-apiserver reaches
// kube-apiserver from its namespace (through the forwarder on HostIP) as its ServiceAccount,
// with a token of the TokenRequest API as a kubelet would mount it.
func (h *Harness) serviceAccountKubeconfig(ctx context.Context, s *CalicoAPIServer, dir string) (string, error) {
	ns, name, ok := strings.Cut(strings.TrimPrefix(s.ServiceAccount, "system:serviceaccount:"), ":")
	if !ok {
		return "", fmt.Errorf("service account %q", s.ServiceAccount)
	}
	cs, err := kubernetes.NewForConfig(h.Config)
	if err != nil {
		return "", err
	}
	tr, err := cs.CoreV1().ServiceAccounts(ns).CreateToken(ctx, name, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](24 * 3600)},
	}, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("token for %s: %w", s.ServiceAccount, err)
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["test"] = &clientcmdapi.Cluster{
		Server:                   "https://" + s.forward.Addr().String(),
		CertificateAuthorityData: h.Config.CAData,
		// The API server's certificate names localhost and 127.0.0.1, where it listens.
		TLSServerName: "localhost",
	}
	cfg.AuthInfos["calico-apiserver"] = &clientcmdapi.AuthInfo{Token: tr.Status.Token}
	cfg.Contexts["test"] = &clientcmdapi.Context{Cluster: "test", AuthInfo: "calico-apiserver"}
	cfg.CurrentContext = "test"
	path := filepath.Join(dir, "kubeconfig")
	return path, clientcmd.WriteToFile(*cfg, path)
}

// network creates the network namespace and the veth pair, with addresses of a /30 of
// 198.18.0.0/15 that no interface of the host has.
func (s *CalicoAPIServer) network(ipTool string) error {
	start, err := scratch.StartTime(os.Getpid())
	if err != nil {
		return err
	}
	s.Netns = fmt.Sprintf("%s%d-%d", calicoNetnsPrefix, os.Getpid(), start)
	s.hostLink = fmt.Sprintf("rrgc%dh", os.Getpid())
	taken, err := hostAddresses()
	if err != nil {
		return err
	}
	base := binary.BigEndian.Uint32(net.IPv4(198, 18, 0, 0).To4())
	for i := 0; i < 32768; i++ {
		block := base + uint32((os.Getpid()+i)%32768)*4
		host, ns := ipv4(block+1), ipv4(block+2)
		if !taken[host] && !taken[ns] {
			s.HostIP, s.IP = host, ns
			break
		}
	}
	if s.HostIP == "" {
		return errors.New("no free /30 in 198.18.0.0/15 for calico-apiserver's veth pair")
	}
	steps := [][]string{
		{"netns", "add", s.Netns},
		{"link", "add", s.hostLink, "type", "veth", "peer", "name", "eth0", "netns", s.Netns},
		{"addr", "add", s.HostIP + "/30", "dev", s.hostLink},
		{"link", "set", s.hostLink, "up"},
		{"-n", s.Netns, "link", "set", "lo", "up"},
		{"-n", s.Netns, "addr", "add", s.IP + "/30", "dev", "eth0"},
		{"-n", s.Netns, "link", "set", "eth0", "up"},
	}
	for _, args := range steps {
		if out, err := exec.Command(ipTool, args...).CombinedOutput(); err != nil {
			return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
		}
	}
	return nil
}

func ipv4(v uint32) string {
	b := make([]byte, 4)
	binary.BigEndian.PutUint32(b, v)
	return net.IP(b).String()
}

// hostAddresses are the IPv4 addresses of the host's interfaces.
func hostAddresses() (map[string]bool, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil {
			out[n.IP.String()] = true
		}
	}
	return out, nil
}

// forwardTo accepts connections on HostIP (a free port) and relays them to addr
// (kube-apiserver's host:port on 127.0.0.1), byte for byte: TLS stays end to end.
func (s *CalicoAPIServer) forwardTo(addr string) error {
	l, err := net.Listen("tcp", net.JoinHostPort(s.HostIP, "0"))
	if err != nil {
		return err
	}
	s.forward = l
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			s.conns.Add(1)
			go func() {
				defer s.conns.Done()
				relay(c, addr)
			}()
		}
	}()
	return nil
}

func relay(c net.Conn, addr string) {
	defer c.Close()
	up, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return
	}
	defer up.Close()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(up, c); _ = up.(*net.TCPConn).CloseWrite(); done <- struct{}{} }()
	go func() { _, _ = io.Copy(c, up); _ = c.(*net.TCPConn).CloseWrite(); done <- struct{}{} }()
	<-done
	<-done
}

// start runs calico-apiserver in the namespace, as Calico's manifest runs it (--secure-port
// 5443, DATASTORE_TYPE=kubernetes), with its kubeconfig and serving certificate; it dies with
// the test process (a parent-death signal, which `ip netns exec` keeps when it execs).
func (s *CalicoAPIServer) start(ipTool, bin, dir, kubeconfig string) error {
	cmd := exec.Command(ipTool, "netns", "exec", s.Netns, bin,
		"--secure-port", strconv.Itoa(s.Port), "--bind-address", s.IP,
		"--tls-cert-file", filepath.Join(dir, "tls.crt"), "--tls-private-key-file", filepath.Join(dir, "tls.key"),
		"--kubeconfig", kubeconfig, "--authentication-kubeconfig", kubeconfig, "--authorization-kubeconfig", kubeconfig)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "DATASTORE_TYPE=kubernetes", "KUBECONFIG=" + kubeconfig, "LOG_LEVEL=warning"}
	cmd.Stdout, cmd.Stderr = s.Log, s.Log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start calico-apiserver: %w", err)
	}
	s.cmd, s.PID = cmd, cmd.Process.Pid
	go func() { _ = cmd.Wait(); close(s.exited) }()
	return nil
}

// publishEndpoints points the Service at calico-apiserver: the EndpointSlice the API server's
// aggregator resolves, and the Endpoints older ones read (no controller makes either here).
func (h *Harness) publishEndpoints(ctx context.Context, s *CalicoAPIServer, service, namespace string) error {
	port := int32(s.Port)
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: service, Namespace: namespace, Labels: map[string]string{
			discoveryv1.LabelServiceName: service, discoveryv1.LabelManagedBy: "rrguard-test-harness"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{s.IP}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}}},
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("apiserver"), Port: &port, Protocol: ptr.To(corev1.ProtocolTCP)}},
	}
	if err := h.Client.Create(ctx, slice); err != nil {
		return fmt.Errorf("create the EndpointSlice of %s/%s: %w", namespace, service, err)
	}
	return nil
}

// awaitCalicoAPIServer waits until the APIService is Available and projectcalico.org/v3
// BGPPeers can be listed through it.
func (h *Harness) awaitCalicoAPIServer(ctx context.Context, s *CalicoAPIServer, apiService string) error {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		err := h.calicoAPIServing(ctx, apiService)
		if err == nil {
			return nil
		}
		select {
		case <-s.exited:
			err = errors.New("calico-apiserver exited")
		case <-time.After(200 * time.Millisecond):
			if time.Now().Before(deadline) {
				continue
			}
		}
		return fmt.Errorf("calico-apiserver (PID %d in network namespace %s at %s:%d) not serving: %w\ncalico-apiserver's log:\n%s",
			s.PID, s.Netns, s.IP, s.Port, err, tail(s.Log.String(), 40))
	}
}

// calicoAPIServing is nil once the APIService is Available and projectcalico.org/v3
// BGPPeers can be listed through it.
func (h *Harness) calicoAPIServing(ctx context.Context, apiService string) error {
	svc := &unstructured.Unstructured{}
	svc.SetAPIVersion("apiregistration.k8s.io/v1")
	svc.SetKind("APIService")
	if err := h.Client.Get(ctx, client.ObjectKey{Name: apiService}, svc); err != nil {
		return err
	}
	conds, _, _ := unstructured.NestedSlice(svc.Object, "status", "conditions")
	available := false
	for _, c := range conds {
		if m, ok := c.(map[string]any); ok && m["type"] == "Available" {
			if m["status"] != "True" {
				return fmt.Errorf("APIService %s not Available: %v: %v", apiService, m["reason"], m["message"])
			}
			available = true
		}
	}
	if !available {
		return fmt.Errorf("APIService %s has no Available condition yet", apiService)
	}
	list := &unstructured.UnstructuredList{}
	list.SetAPIVersion("projectcalico.org/v3")
	list.SetKind("BGPPeerList")
	return h.Client.List(ctx, list)
}

// tail returns the last n lines of text.
func tail(text string, n int) string {
	lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// stop ends calico-apiserver (by its PID), the forwarder and the network namespace (which
// takes the veth pair with it).
func (s *CalicoAPIServer) stop() error {
	var errs []error
	if s.cmd != nil {
		if err := s.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
			errs = append(errs, fmt.Errorf("kill calico-apiserver (PID %d): %w", s.PID, err))
		}
		select {
		case <-s.exited:
		case <-time.After(10 * time.Second):
			errs = append(errs, fmt.Errorf("calico-apiserver (PID %d) still running 10s after SIGKILL", s.PID))
		}
	}
	if s.forward != nil {
		_ = s.forward.Close()
	}
	if s.Netns != "" {
		ipTool, err := lookIP()
		if err == nil {
			if out, delErr := exec.Command(ipTool, "netns", "delete", s.Netns).CombinedOutput(); delErr != nil {
				err = fmt.Errorf("ip netns delete %s: %v: %s", s.Netns, delErr, bytes.TrimSpace(out))
			}
		}
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// lookIP finds iproute2's ip, also where PATH lacks /usr/sbin.
func lookIP() (string, error) {
	if p, err := exec.LookPath("ip"); err == nil {
		return p, nil
	}
	for _, p := range []string{"/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"} {
		if fi, err := os.Stat(p); err == nil && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", errors.New("calico-apiserver's network namespace needs iproute2's ip (apt-get install iproute2) and root")
}

// removeDeadNetns removes the namespaces of calico-apiserver left by test processes that
// are gone (killed before they could clean up).
func removeDeadNetns(ipTool string) {
	out, err := exec.Command(ipTool, "netns", "list").Output()
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(out), "\n") {
		name, _, _ := strings.Cut(strings.TrimSpace(line), " ")
		rest, ok := strings.CutPrefix(name, calicoNetnsPrefix)
		if !ok {
			continue
		}
		pidText, startText, _ := strings.Cut(rest, "-")
		pid, err1 := strconv.Atoi(pidText)
		start, err2 := strconv.ParseUint(startText, 10, 64)
		if err1 != nil || err2 != nil {
			continue
		}
		if now, err := scratch.StartTime(pid); err != nil || now != start {
			_ = exec.Command(ipTool, "netns", "delete", name).Run()
		}
	}
}
