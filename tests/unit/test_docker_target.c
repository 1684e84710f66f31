/*
 * Unit test of the docker provider's address and port selection
 * (target.c): inspect documents in, "host:port" or a skip reason out.
 * The first three documents were captured from a real dockerd 20.10 (the
 * test engine of tests/servers/dockerd.sh, which has no bridge); the
 * others are written by hand after the Engine API 1.41 schema (single
 * quotes stand for double quotes).  Nothing here opens a socket.
 */
#include "target.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"

/* captured from dockerd 20.10 (docker_cli inspect host), API 1.41 */
static const char tt_host[] =
    "{\"Id\":\"95e7452e03780257e7e22024f40a8bbbc7022f82a60eae909be1f7985ef528c"
    "c\",\"Created\":\"2026-11-26T00:55:03.791695287Z\",\"Path\":\"sleep\",\"Args\":[\""
    "1000\"],\"State\":{\"Status\":\"running\",\"Running\":true,\"Paused\":false,\"Rest"
    "arting\":false,\"OOMKilled\":false,\"Dead\":false,\"Pid\":11797,\"ExitCode\":0,"
    "\"Error\":\"\",\"StartedAt\":\"2026-11-26T00:55:04.030172114Z\",\"FinishedAt\":\""
    "0001-01-01T00:00:00Z\"},\"Image\":\"sha256:5513dc531aa2ad68c27abc5a9eb9ce3"
    "2ce17bb590c6dff069b6aad9a26c80c6a\",\"ResolvConfPath\":\"/tmp/hd-d/data/co"
    "ntainers/95e7452e03780257e7e22024f40a8bbbc7022f82a60eae909be1f7985ef52"
    "8cc/resolv.conf\",\"HostnamePath\":\"/tmp/hd-d/data/containers/95e7452e037"
    "80257e7e22024f40a8bbbc7022f82a60eae909be1f7985ef528cc/hostname\",\"Hosts"
    "Path\":\"/tmp/hd-d/data/containers/95e7452e03780257e7e22024f40a8bbbc7022"
    "f82a60eae909be1f7985ef528cc/hosts\",\"LogPath\":\"/tmp/hd-d/data/container"
    "s/95e7452e03780257e7e22024f40a8bbbc7022f82a60eae909be1f7985ef528cc/95e"
    "7452e03780257e7e22024f40a8bbbc7022f82a60eae909be1f7985ef528cc-json.log"
    "\",\"Name\":\"/h1\",\"RestartCount\":0,\"Driver\":\"overlay2\",\"Platform\":\"linux\""
    ",\"MountLabel\":\"\",\"ProcessLabel\":\"\",\"AppArmorProfile\":\"\",\"ExecIDs\":null"
    ",\"HostConfig\":{\"Binds\":null,\"ContainerIDFile\":\"\",\"LogConfig\":{\"Type\":\""
    "json-file\",\"Config\":{}},\"NetworkMode\":\"host\",\"PortBindings\":{},\"Restar"
    "tPolicy\":{\"Name\":\"no\",\"MaximumRetryCount\":0},\"AutoRemove\":false,\"Volum"
    "eDriver\":\"\",\"VolumesFrom\":null,\"CapAdd\":null,\"CapDrop\":null,\"CgroupnsM"
    "ode\":\"host\",\"Dns\":[],\"DnsOptions\":[],\"DnsSearch\":[],\"ExtraHosts\":null,"
    "\"GroupAdd\":null,\"IpcMode\":\"private\",\"Cgroup\":\"\",\"Links\":null,\"OomScore"
    "Adj\":0,\"PidMode\":\"\",\"Privileged\":false,\"PublishAllPorts\":false,\"Readon"
    "lyRootfs\":false,\"SecurityOpt\":null,\"UTSMode\":\"\",\"UsernsMode\":\"\",\"ShmSi"
    "ze\":67108864,\"Runtime\":\"runc\",\"ConsoleSize\":[0,0],\"Isolation\":\"\",\"CpuS"
    "hares\":0,\"Memory\":0,\"NanoCpus\":0,\"CgroupParent\":\"\",\"BlkioWeight\":0,\"Bl"
    "kioWeightDevice\":[],\"BlkioDeviceReadBps\":[],\"BlkioDeviceWriteBps\":[],\""
    "BlkioDeviceReadIOps\":[],\"BlkioDeviceWriteIOps\":[],\"CpuPeriod\":0,\"CpuQu"
    "ota\":0,\"CpuRealtimePeriod\":0,\"CpuRealtimeRuntime\":0,\"CpusetCpus\":\"\",\"C"
    "pusetMems\":\"\",\"Devices\":[],\"DeviceCgroupRules\":null,\"DeviceRequests\":n"
    "ull,\"KernelMemory\":0,\"KernelMemoryTCP\":0,\"MemoryReservation\":0,\"Memory"
    "Swap\":0,\"MemorySwappiness\":null,\"OomKillDisable\":false,\"PidsLimit\":nul"
    "l,\"Ulimits\":[],\"CpuCount\":0,\"CpuPercent\":0,\"IOMaximumIOps\":0,\"IOMaximu"
    "mBandwidth\":0,\"MaskedPaths\":[\"/proc/asound\",\"/proc/acpi\",\"/proc/kcore\""
    ",\"/proc/keys\",\"/proc/latency_stats\",\"/proc/timer_list\",\"/proc/timer_st"
    "ats\",\"/proc/sched_debug\",\"/proc/scsi\",\"/sys/firmware\"],\"ReadonlyPaths\""
    ":[\"/proc/bus\",\"/proc/fs\",\"/proc/irq\",\"/proc/sys\",\"/proc/sysrq-trigger\""
    "]},\"GraphDriver\":{\"Data\":{\"LowerDir\":\"/tmp/hd-d/data/overlay2/ee26942d"
    "1c2820154fc0de763e8b1d947cf9a001ed78ec99349d1b4e678f55c9-init/diff:/tm"
    "p/hd-d/data/overlay2/62634c324f047bd8871ca854d188491503ee3f80df423605d"
    "44cd652a986d94a/diff\",\"MergedDir\":\"/tmp/hd-d/data/overlay2/ee26942d1c2"
    "820154fc0de763e8b1d947cf9a001ed78ec99349d1b4e678f55c9/merged\",\"UpperDi"
    "r\":\"/tmp/hd-d/data/overlay2/ee26942d1c2820154fc0de763e8b1d947cf9a001ed"
    "78ec99349d1b4e678f55c9/diff\",\"WorkDir\":\"/tmp/hd-d/data/overlay2/ee2694"
    "2d1c2820154fc0de763e8b1d947cf9a001ed78ec99349d1b4e678f55c9/work\"},\"Nam"
    "e\":\"overlay2\"},\"Mounts\":[],\"Config\":{\"Hostname\":\"vm\",\"Domainname\":\"\",\""
    "User\":\"\",\"AttachStdin\":false,\"AttachStdout\":false,\"AttachStderr\":false"
    ",\"ExposedPorts\":{\"18081/tcp\":{}},\"Tty\":false,\"OpenStdin\":false,\"StdinO"
    "nce\":false,\"Env\":[\"PATH=/bin\"],\"Cmd\":[\"sleep\",\"1000\"],\"Image\":\"relais-"
    "test/busybox:latest\",\"Volumes\":null,\"WorkingDir\":\"\",\"Entrypoint\":null,"
    "\"OnBuild\":null,\"Labels\":{\"a\":\"b\"}},\"NetworkSettings\":{\"Bridge\":\"\",\"San"
    "dboxID\":\"728158c0b50a32554a570ffb88e5ad0dac79d7340056e30bbcb9183ac681c"
    "415\",\"HairpinMode\":false,\"LinkLocalIPv6Address\":\"\",\"LinkLocalIPv6Prefi"
    "xLen\":0,\"Ports\":{},\"SandboxKey\":\"/tmp/hd-d/exec/netns/default\",\"Second"
    "aryIPAddresses\":null,\"SecondaryIPv6Addresses\":null,\"EndpointID\":\"\",\"Ga"
    "teway\":\"\",\"GlobalIPv6Address\":\"\",\"GlobalIPv6PrefixLen\":0,\"IPAddress\":\""
    "\",\"IPPrefixLen\":0,\"IPv6Gateway\":\"\",\"MacAddress\":\"\",\"Networks\":{\"host\":"
    "{\"IPAMConfig\":null,\"Links\":null,\"Aliases\":null,\"NetworkID\":\"3e5893a3f7"
    "6419a4077d12ac4b4d621c2c55d7eea4e3fcb3021792745f84748a\",\"EndpointID\":\""
    "4573e2076c629ea678e8a876006816a7cc8f8c4913765f0ce2f23dc3ecb47ff2\",\"Gat"
    "eway\":\"\",\"IPAddress\":\"\",\"IPPrefixLen\":0,\"IPv6Gateway\":\"\",\"GlobalIPv6Ad"
    "dress\":\"\",\"GlobalIPv6PrefixLen\":0,\"MacAddress\":\"\",\"DriverOpts\":null}}}"
    "}";

/* captured from dockerd 20.10 (docker_cli inspect none), API 1.41 */
static const char tt_none[] =
    "{\"Id\":\"22de66b9ecb5561fcaf2f452655634862f4b999e2c665b87004c4d101110ebe"
    "e\",\"Created\":\"2026-11-26T00:55:04.051804514Z\",\"Path\":\"sleep\",\"Args\":[\""
    "1000\"],\"State\":{\"Status\":\"running\",\"Running\":true,\"Paused\":false,\"Rest"
    "arting\":false,\"OOMKilled\":false,\"Dead\":false,\"Pid\":11847,\"ExitCode\":0,"
    "\"Error\":\"\",\"StartedAt\":\"2026-11-26T00:55:04.326907221Z\",\"FinishedAt\":\""
    "0001-01-01T00:00:00Z\"},\"Image\":\"sha256:5513dc531aa2ad68c27abc5a9eb9ce3"
    "2ce17bb590c6dff069b6aad9a26c80c6a\",\"ResolvConfPath\":\"/tmp/hd-d/data/co"
    "ntainers/22de66b9ecb5561fcaf2f452655634862f4b999e2c665b87004c4d101110e"
    "bee/resolv.conf\",\"HostnamePath\":\"/tmp/hd-d/data/containers/22de66b9ecb"
    "5561fcaf2f452655634862f4b999e2c665b87004c4d101110ebee/hostname\",\"Hosts"
    "Path\":\"/tmp/hd-d/data/containers/22de66b9ecb5561fcaf2f452655634862f4b9"
    "99e2c665b87004c4d101110ebee/hosts\",\"LogPath\":\"/tmp/hd-d/data/container"
    "s/22de66b9ecb5561fcaf2f452655634862f4b999e2c665b87004c4d101110ebee/22d"
    "e66b9ecb5561fcaf2f452655634862f4b999e2c665b87004c4d101110ebee-json.log"
    "\",\"Name\":\"/n1\",\"RestartCount\":0,\"Driver\":\"overlay2\",\"Platform\":\"linux\""
    ",\"MountLabel\":\"\",\"ProcessLabel\":\"\",\"AppArmorProfile\":\"\",\"ExecIDs\":null"
    ",\"HostConfig\":{\"Binds\":null,\"ContainerIDFile\":\"\",\"LogConfig\":{\"Type\":\""
    "json-file\",\"Config\":{}},\"NetworkMode\":\"none\",\"PortBindings\":{},\"Restar"
    "tPolicy\":{\"Name\":\"no\",\"MaximumRetryCount\":0},\"AutoRemove\":false,\"Volum"
    "eDriver\":\"\",\"VolumesFrom\":null,\"CapAdd\":null,\"CapDrop\":null,\"CgroupnsM"
    "ode\":\"host\",\"Dns\":[],\"DnsOptions\":[],\"DnsSearch\":[],\"ExtraHosts\":null,"
    "\"GroupAdd\":null,\"IpcMode\":\"private\",\"Cgroup\":\"\",\"Links\":null,\"OomScore"
    "Adj\":0,\"PidMode\":\"\",\"Privileged\":false,\"PublishAllPorts\":false,\"Readon"
    "lyRootfs\":false,\"SecurityOpt\":null,\"UTSMode\":\"\",\"UsernsMode\":\"\",\"ShmSi"
    "ze\":67108864,\"Runtime\":\"runc\",\"ConsoleSize\":[0,0],\"Isolation\":\"\",\"CpuS"
    "hares\":0,\"Memory\":0,\"NanoCpus\":0,\"CgroupParent\":\"\",\"BlkioWeight\":0,\"Bl"
    "kioWeightDevice\":[],\"BlkioDeviceReadBps\":[],\"BlkioDeviceWriteBps\":[],\""
    "BlkioDeviceReadIOps\":[],\"BlkioDeviceWriteIOps\":[],\"CpuPeriod\":0,\"CpuQu"
    "ota\":0,\"CpuRealtimePeriod\":0,\"CpuRealtimeRuntime\":0,\"CpusetCpus\":\"\",\"C"
    "pusetMems\":\"\",\"Devices\":[],\"DeviceCgroupRules\":null,\"DeviceRequests\":n"
    "ull,\"KernelMemory\":0,\"KernelMemoryTCP\":0,\"MemoryReservation\":0,\"Memory"
    "Swap\":0,\"MemorySwappiness\":null,\"OomKillDisable\":false,\"PidsLimit\":nul"
    "l,\"Ulimits\":[],\"CpuCount\":0,\"CpuPercent\":0,\"IOMaximumIOps\":0,\"IOMaximu"
    "mBandwidth\":0,\"MaskedPaths\":[\"/proc/asound\",\"/proc/acpi\",\"/proc/kcore\""
    ",\"/proc/keys\",\"/proc/latency_stats\",\"/proc/timer_list\",\"/proc/timer_st"
    "ats\",\"/proc/sched_debug\",\"/proc/scsi\",\"/sys/firmware\"],\"ReadonlyPaths\""
    ":[\"/proc/bus\",\"/proc/fs\",\"/proc/irq\",\"/proc/sys\",\"/proc/sysrq-trigger\""
    "]},\"GraphDriver\":{\"Data\":{\"LowerDir\":\"/tmp/hd-d/data/overlay2/2c1f34a3"
    "ed19597eaa51fbd26b24517738d11063eb43282079b796876f4c1380-init/diff:/tm"
    "p/hd-d/data/overlay2/62634c324f047bd8871ca854d188491503ee3f80df423605d"
    "44cd652a986d94a/diff\",\"MergedDir\":\"/tmp/hd-d/data/overlay2/2c1f34a3ed1"
    "9597eaa51fbd26b24517738d11063eb43282079b796876f4c1380/merged\",\"UpperDi"
    "r\":\"/tmp/hd-d/data/overlay2/2c1f34a3ed19597eaa51fbd26b24517738d11063eb"
    "43282079b796876f4c1380/diff\",\"WorkDir\":\"/tmp/hd-d/data/overlay2/2c1f34"
    "a3ed19597eaa51fbd26b24517738d11063eb43282079b796876f4c1380/work\"},\"Nam"
    "e\":\"overlay2\"},\"Mounts\":[],\"Config\":{\"Hostname\":\"22de66b9ecb5\",\"Domain"
    "name\":\"\",\"User\":\"\",\"AttachStdin\":false,\"AttachStdout\":false,\"AttachStd"
    "err\":false,\"ExposedPorts\":{\"80/tcp\":{},\"81/udp\":{}},\"Tty\":false,\"OpenS"
    "tdin\":false,\"StdinOnce\":false,\"Env\":[\"PATH=/bin\"],\"Cmd\":[\"sleep\",\"1000"
    "\"],\"Image\":\"relais-test/busybox:latest\",\"Volumes\":null,\"WorkingDir\":\"\""
    ",\"Entrypoint\":null,\"OnBuild\":null,\"Labels\":{}},\"NetworkSettings\":{\"Bri"
    "dge\":\"\",\"SandboxID\":\"4d3a817a013e96601e0363407258b05e2086f25162d8dbb96"
    "110ab1d4fc3d910\",\"HairpinMode\":false,\"LinkLocalIPv6Address\":\"\",\"LinkLo"
    "calIPv6PrefixLen\":0,\"Ports\":{},\"SandboxKey\":\"/tmp/hd-d/exec/netns/4d3a"
    "817a013e\",\"SecondaryIPAddresses\":null,\"SecondaryIPv6Addresses\":null,\"E"
    "ndpointID\":\"\",\"Gateway\":\"\",\"GlobalIPv6Address\":\"\",\"GlobalIPv6PrefixLen"
    "\":0,\"IPAddress\":\"\",\"IPPrefixLen\":0,\"IPv6Gateway\":\"\",\"MacAddress\":\"\",\"N"
    "etworks\":{\"none\":{\"IPAMConfig\":null,\"Links\":null,\"Aliases\":null,\"Netwo"
    "rkID\":\"2b03beaef86be9e24a5e2d2edc7d1b0670684de5382206c482871e7eaa7812f"
    "f\",\"EndpointID\":\"5359ec59945dfbabdfdcec1c2523b2e9b0f3537ed5e9c2c95bbe5"
    "0b0b71980e6\",\"Gateway\":\"\",\"IPAddress\":\"\",\"IPPrefixLen\":0,\"IPv6Gateway\""
    ":\"\",\"GlobalIPv6Address\":\"\",\"GlobalIPv6PrefixLen\":0,\"MacAddress\":\"\",\"Dr"
    "iverOpts\":null}}}}";

/* captured from dockerd 20.10 (docker_cli inspect join), API 1.41 */
static const char tt_join[] =
    "{\"Id\":\"2e7a8facef26bcd73bafd6cc3cf3aab6e3003c209a50c22a9e3d90d1dcb6da2"
    "0\",\"Created\":\"2026-11-26T00:55:04.349307525Z\",\"Path\":\"sleep\",\"Args\":[\""
    "1000\"],\"State\":{\"Status\":\"running\",\"Running\":true,\"Paused\":false,\"Rest"
    "arting\":false,\"OOMKilled\":false,\"Dead\":false,\"Pid\":11914,\"ExitCode\":0,"
    "\"Error\":\"\",\"StartedAt\":\"2026-11-26T00:55:04.468141178Z\",\"FinishedAt\":\""
    "0001-01-01T00:00:00Z\"},\"Image\":\"sha256:5513dc531aa2ad68c27abc5a9eb9ce3"
    "2ce17bb590c6dff069b6aad9a26c80c6a\",\"ResolvConfPath\":\"/tmp/hd-d/data/co"
    "ntainers/22de66b9ecb5561fcaf2f452655634862f4b999e2c665b87004c4d101110e"
    "bee/resolv.conf\",\"HostnamePath\":\"/tmp/hd-d/data/containers/22de66b9ecb"
    "5561fcaf2f452655634862f4b999e2c665b87004c4d101110ebee/hostname\",\"Hosts"
    "Path\":\"/tmp/hd-d/data/containers/22de66b9ecb5561fcaf2f452655634862f4b9"
    "99e2c665b87004c4d101110ebee/hosts\",\"LogPath\":\"/tmp/hd-d/data/container"
    "s/2e7a8facef26bcd73bafd6cc3cf3aab6e3003c209a50c22a9e3d90d1dcb6da20/2e7"
    "a8facef26bcd73bafd6cc3cf3aab6e3003c209a50c22a9e3d90d1dcb6da20-json.log"
    "\",\"Name\":\"/j1\",\"RestartCount\":0,\"Driver\":\"overlay2\",\"Platform\":\"linux\""
    ",\"MountLabel\":\"\",\"ProcessLabel\":\"\",\"AppArmorProfile\":\"\",\"ExecIDs\":null"
    ",\"HostConfig\":{\"Binds\":null,\"ContainerIDFile\":\"\",\"LogConfig\":{\"Type\":\""
    "json-file\",\"Config\":{}},\"NetworkMode\":\"container:22de66b9ecb5561fcaf2f"
    "452655634862f4b999e2c665b87004c4d101110ebee\",\"PortBindings\":{},\"Restar"
    "tPolicy\":{\"Name\":\"no\",\"MaximumRetryCount\":0},\"AutoRemove\":false,\"Volum"
    "eDriver\":\"\",\"VolumesFrom\":null,\"CapAdd\":null,\"CapDrop\":null,\"CgroupnsM"
    "ode\":\"host\",\"Dns\":[],\"DnsOptions\":[],\"DnsSearch\":[],\"ExtraHosts\":null,"
    "\"GroupAdd\":null,\"IpcMode\":\"private\",\"Cgroup\":\"\",\"Links\":null,\"OomScore"
    "Adj\":0,\"PidMode\":\"\",\"Privileged\":false,\"PublishAllPorts\":false,\"Readon"
    "lyRootfs\":false,\"SecurityOpt\":null,\"UTSMode\":\"\",\"UsernsMode\":\"\",\"ShmSi"
    "ze\":67108864,\"Runtime\":\"runc\",\"ConsoleSize\":[0,0],\"Isolation\":\"\",\"CpuS"
    "hares\":0,\"Memory\":0,\"NanoCpus\":0,\"CgroupParent\":\"\",\"BlkioWeight\":0,\"Bl"
    "kioWeightDevice\":[],\"BlkioDeviceReadBps\":[],\"BlkioDeviceWriteBps\":[],\""
    "BlkioDeviceReadIOps\":[],\"BlkioDeviceWriteIOps\":[],\"CpuPeriod\":0,\"CpuQu"
    "ota\":0,\"CpuRealtimePeriod\":0,\"CpuRealtimeRuntime\":0,\"CpusetCpus\":\"\",\"C"
    "pusetMems\":\"\",\"Devices\":[],\"DeviceCgroupRules\":null,\"DeviceRequests\":n"
    "ull,\"KernelMemory\":0,\"KernelMemoryTCP\":0,\"MemoryReservation\":0,\"Memory"
    "Swap\":0,\"MemorySwappiness\":null,\"OomKillDisable\":false,\"PidsLimit\":nul"
    "l,\"Ulimits\":[],\"CpuCount\":0,\"CpuPercent\":0,\"IOMaximumIOps\":0,\"IOMaximu"
    "mBandwidth\":0,\"MaskedPaths\":[\"/proc/asound\",\"/proc/acpi\",\"/proc/kcore\""
    ",\"/proc/keys\",\"/proc/latency_stats\",\"/proc/timer_list\",\"/proc/timer_st"
    "ats\",\"/proc/sched_debug\",\"/proc/scsi\",\"/sys/firmware\"],\"ReadonlyPaths\""
    ":[\"/proc/bus\",\"/proc/fs\",\"/proc/irq\",\"/proc/sys\",\"/proc/sysrq-trigger\""
    "]},\"GraphDriver\":{\"Data\":{\"LowerDir\":\"/tmp/hd-d/data/overlay2/10971ff2"
    "b79d2b7e5747c9f0bb9c1adbc36c37394f02a28a480e3f6c485e7ce6-init/diff:/tm"
    "p/hd-d/data/overlay2/62634c324f047bd8871ca854d188491503ee3f80df423605d"
    "44cd652a986d94a/diff\",\"MergedDir\":\"/tmp/hd-d/data/overlay2/10971ff2b79"
    "d2b7e5747c9f0bb9c1adbc36c37394f02a28a480e3f6c485e7ce6/merged\",\"UpperDi"
    "r\":\"/tmp/hd-d/data/overlay2/10971ff2b79d2b7e5747c9f0bb9c1adbc36c37394f"
    "02a28a480e3f6c485e7ce6/diff\",\"WorkDir\":\"/tmp/hd-d/data/overlay2/10971f"
    "f2b79d2b7e5747c9f0bb9c1adbc36c37394f02a28a480e3f6c485e7ce6/work\"},\"Nam"
    "e\":\"overlay2\"},\"Mounts\":[],\"Config\":{\"Hostname\":\"22de66b9ecb5\",\"Domain"
    "name\":\"\",\"User\":\"\",\"AttachStdin\":false,\"AttachStdout\":false,\"AttachStd"
    "err\":false,\"Tty\":false,\"OpenStdin\":false,\"StdinOnce\":false,\"Env\":[\"PAT"
    "H=/bin\"],\"Cmd\":[\"sleep\",\"1000\"],\"Image\":\"relais-test/busybox:latest\",\""
    "Volumes\":null,\"WorkingDir\":\"\",\"Entrypoint\":null,\"OnBuild\":null,\"Labels"
    "\":{}},\"NetworkSettings\":{\"Bridge\":\"\",\"SandboxID\":\"\",\"HairpinMode\":fals"
    "e,\"LinkLocalIPv6Address\":\"\",\"LinkLocalIPv6PrefixLen\":0,\"Ports\":{},\"San"
    "dboxKey\":\"\",\"SecondaryIPAddresses\":null,\"SecondaryIPv6Addresses\":null,"
    "\"EndpointID\":\"\",\"Gateway\":\"\",\"GlobalIPv6Address\":\"\",\"GlobalIPv6PrefixL"
    "en\":0,\"IPAddress\":\"\",\"IPPrefixLen\":0,\"IPv6Gateway\":\"\",\"MacAddress\":\"\","
    "\"Networks\":{}}}";

/* bridge network, port 80 published on every address (0.0.0.0 and ::) */
static const char tt_bridge[] =
    "{'Id':'b1b1b1b1c2c2c2c2d3d3d3d3e4e4e4e4f5f5f5f5a6a6a6a6b7b7b7b7c8c8c8c8',"
    "'Name':'/web','State':{'Status':'running','Running':true,'Paused':false},"
    "'HostConfig':{'NetworkMode':'bridge',"
    "'PortBindings':{'80/tcp':[{'HostIp':'','HostPort':'8080'}]}},"
    "'Config':{'ExposedPorts':{'80/tcp':{}},'Labels':{'traefik.enable':'true'}},"
    "'NetworkSettings':{'Bridge':'','Ports':{'80/tcp':[{'HostIp':'0.0.0.0','HostPort':'8080'},"
    "{'HostIp':'::','HostPort':'8080'}]},'IPAddress':'172.17.0.2','Gateway':'172.17.0.1',"
    "'Networks':{'bridge':{'IPAMConfig':null,'Links':null,'Aliases':null,'NetworkID':'n1',"
    "'EndpointID':'e1','Gateway':'172.17.0.1','IPAddress':'172.17.0.2','IPPrefixLen':16,"
    "'IPv6Gateway':'','GlobalIPv6Address':'','GlobalIPv6PrefixLen':0,"
    "'MacAddress':'02:42:ac:11:00:02',"
    "'DriverOpts':null}}}}";

/* bridge network, port 80 published on 127.0.0.1:18080 only; port 9000
 * published without a host address */
static const char tt_bound[] =
    "{'Id':'0b0b0b0b','Name':'/bound','HostConfig':{'NetworkMode':'bridge'},"
    "'Config':{'ExposedPorts':{'80/tcp':{},'9000/tcp':{}},'Labels':{}},"
    "'NetworkSettings':{'Ports':{'80/TCP':[{'HostIp':'127.0.0.1','HostPort':'18080'}],"
    "'9000/tcp':[{'HostIp':'','HostPort':'19000'}]},"
    "'Networks':{'bridge':{'IPAddress':'172.17.0.3','GlobalIPv6Address':''}}}}";

/* two user networks (compose style), traefik.docker.network=front;
 * the port only in NetworkSettings.Ports (not published) */
static const char tt_multi[] =
    "{'Id':'3a3a3a3a','Name':'/app_web_1','HostConfig':{'NetworkMode':'app_back'},"
    "'Config':{'ExposedPorts':null,'Labels':{'traefik.docker.network':'app_front',"
    "'relais.docker.network':'app_back'}},"
    "'NetworkSettings':{'Ports':{'8080/tcp':null},"
    "'Networks':{'app_back':{'IPAddress':'10.1.0.5','GlobalIPv6Address':''},"
    "'app_front':{'IPAddress':'10.2.0.7','GlobalIPv6Address':''}}}}";

/* the same without a network label */
static const char tt_multi_nolabel[] =
    "{'Id':'4a4a4a4a','Name':'/app_api_1','HostConfig':{'NetworkMode':'app_back'},"
    "'Config':{'ExposedPorts':{'8080/tcp':{}},'Labels':{}},"
    "'NetworkSettings':{'Ports':{},"
    "'Networks':{'app_back':{'IPAddress':'10.1.0.6','GlobalIPv6Address':''},"
    "'app_front':{'IPAddress':'10.2.0.8','GlobalIPv6Address':''}}}}";

/* several exposed TCP ports and a UDP one */
static const char tt_several[] =
    "{'Id':'5a5a5a5a','Name':'/several','HostConfig':{'NetworkMode':'bridge'},"
    "'Config':{'ExposedPorts':{'443/tcp':{},'80/tcp':{},'53/udp':{}},'Labels':{}},"
    "'NetworkSettings':{'Ports':{'443/tcp':null,'80/tcp':null,'53/udp':null},"
    "'Networks':{'bridge':{'IPAddress':'172.17.0.9','GlobalIPv6Address':''}}}}";

/* UDP only */
static const char tt_udp[] =
    "{'Id':'6a6a6a6a','Name':'/dns','HostConfig':{'NetworkMode':'bridge'},"
    "'Config':{'ExposedPorts':{'53/udp':{}},'Labels':{}},"
    "'NetworkSettings':{'Ports':{'53/udp':null},"
    "'Networks':{'bridge':{'IPAddress':'172.17.0.10','GlobalIPv6Address':''}}}}";

/* an IPv6-only network, the first network without any address */
static const char tt_v6[] =
    "{'Id':'7a7a7a7a','Name':'/six','HostConfig':{'NetworkMode':'v6net'},"
    "'Config':{'ExposedPorts':{'80/tcp':{}},'Labels':{}},"
    "'NetworkSettings':{'Ports':{},"
    "'Networks':{'empty':{'IPAddress':'','GlobalIPv6Address':''},"
    "'v6net':{'IPAddress':'','GlobalIPv6Address':'fd00:1::5'}}}}";

/* sharing the network of the bridge container (by full id) */
static const char tt_join_bridge[] =
    "{'Id':'8a8a8a8a','Name':'/sidecar','HostConfig':{'NetworkMode':"
    "'container:b1b1b1b1c2c2c2c2d3d3d3d3e4e4e4e4f5f5f5f5a6a6a6a6b7b7b7b7c8c8c8c8'},"
    "'Config':{'ExposedPorts':{'9090/tcp':{}},'Labels':{}},"
    "'NetworkSettings':{'Ports':{},'Networks':{}}}";

/* sharing the network of the compose container, by name */
static const char tt_join_multi[] =
    "{'Id':'9a9a9a9a','Name':'/sidecar2','HostConfig':{'NetworkMode':'container:app_web_1'},"
    "'Config':{'ExposedPorts':{'9090/tcp':{}},'Labels':{}},"
    "'NetworkSettings':{'Ports':{},'Networks':{}}}";

/* sharing the network of a container that is not running */
static const char tt_join_gone[] =
    "{'Id':'aa1aa1aa','Name':'/orphan','HostConfig':{'NetworkMode':'container:deadbeef'},"
    "'Config':{'ExposedPorts':{'9090/tcp':{}},'Labels':{}},"
    "'NetworkSettings':{'Ports':{},'Networks':{}}}";

/** Every document, parsed. */
static json_t *tt_docs[16];
static size_t tt_ndocs;

/* Parses text (single quotes turned into double quotes when quotes is
 * set) and remembers it for tt_find; exits on a parse error. */
static json_t *tt_load(const char *text, int quotes)
{
    char *s = strdup(text);
    json_error_t err;
    json_t *j;

    for (char *p = s; quotes && *p; p++)
        if (*p == '\'') *p = '"';
    j = json_loads(s, 0, &err);
    free(s);
    if (!j) {
        printf("Bail out! fixture does not parse: %s (line %d col %d)\n", err.text, err.line,
               err.column);
        exit(1);
    }
    tt_docs[tt_ndocs++] = j;
    return j;
}

/* dkt_find_fn over tt_docs. */
static const json_t *tt_find(void *arg, const char *ref)
{
    (void)arg;
    for (size_t i = 0; i < tt_ndocs; i++)
        if (dkt_is(tt_docs[i], ref)) return tt_docs[i];
    return NULL;
}

/* Runs dkt_server; returns "host:port" or "SKIP: reason" in a static
 * buffer, the note in note. */
static const char *tt_server(const json_t *d, const char *port, const char *prefix,
                             const char *network, int bind, char *note)
{
    static char out[DKT_MSG_LEN + 8];
    char buf[DKT_MSG_LEN];
    struct dkt_opts o = {prefix, network, bind};

    if (dkt_server(d, port, &o, tt_find, NULL, buf, sizeof(buf), note, DKT_MSG_LEN) < 0)
        snprintf(out, sizeof(out), "SKIP: %s", buf);
    else
        snprintf(out, sizeof(out), "%s", buf);
    return out;
}

#define IS(got, want, what)                                                                        \
    do {                                                                                           \
        const char *g_ = (got);                                                                    \
        ok(!strcmp(g_, want), "%s (got \"%s\")", what, g_);                                        \
    } while (0)

int main(void)
{
    json_t *host = tt_load(tt_host, 0), *none = tt_load(tt_none, 0), *join = tt_load(tt_join, 0);
    json_t *bridge = tt_load(tt_bridge, 1), *bound = tt_load(tt_bound, 1);
    json_t *multi = tt_load(tt_multi, 1), *multi2 = tt_load(tt_multi_nolabel, 1);
    json_t *several = tt_load(tt_several, 1), *udp = tt_load(tt_udp, 1), *v6 = tt_load(tt_v6, 1);
    json_t *jb = tt_load(tt_join_bridge, 1), *jm = tt_load(tt_join_multi, 1);
    json_t *jg = tt_load(tt_join_gone, 1);
    char note[DKT_MSG_LEN];
    int port = 0;

    /* the real documents */
    IS(tt_server(host, NULL, "traefik", NULL, 0, note), "127.0.0.1:18081",
       "host network: 127.0.0.1 and the single exposed port");
    ok(note[0] == 0, "... no note");
    IS(tt_server(host, "9000", "traefik", NULL, 0, note), "127.0.0.1:9000",
       "host network: the port label wins");
    IS(tt_server(host, NULL, "traefik", "bridge", 0, note), "127.0.0.1:18081",
       "host network: a provider network the container lacks is ignored");
    IS(tt_server(host, NULL, "traefik", NULL, 1, note), "127.0.0.1:18081",
       "host network + useBindPortIP without a binding: falls back");
    ok(strstr(note, "no binding for port 18081") != NULL, "... with a note (%s)", note);
    IS(tt_server(none, NULL, "traefik", NULL, 0, note), "SKIP: no IP address on any network",
       "network none: skipped");
    IS(tt_server(join, "80", "traefik", NULL, 0, note), "SKIP: no IP address on any network",
       "container:<id> of a none container: that container's (missing) address");
    IS(tt_server(join, NULL, "traefik", NULL, 0, note),
       "SKIP: no exposed TCP port and no traefik.http.services.<name>.loadbalancer.server.port "
       "label",
       "container:<id> mode, no port: skipped");
    ok(dkt_is(none, "22de66b9ecb5561fcaf2f452655634862f4b999e2c665b87004c4d101110ebee") &&
           dkt_is(none, "22de66b9") && dkt_is(none, "n1") && dkt_is(none, "/n1") &&
           !dkt_is(none, "22d") && !dkt_is(none, "") && !dkt_is(none, "n") &&
           !dkt_is(none, "22de66b9x"),
       "dkt_is: full id, id prefix, name with or without /");
    ok(dkt_port(host, &port, note, sizeof(note)) == 0 && port == 18081, "dkt_port: 18081");

    /* bridge */
    IS(tt_server(bridge, NULL, "traefik", NULL, 0, note), "172.17.0.2:80",
       "bridge: network address and exposed port");
    IS(tt_server(bridge, NULL, "traefik", NULL, 1, note), "172.17.0.2:80",
       "useBindPortIP with HostIp 0.0.0.0: falls back to the internal address and port");
    ok(strstr(note, "no usable HostIp (\"0.0.0.0\")") != NULL, "... with a note (%s)", note);
    IS(tt_server(bridge, "8081", "traefik", NULL, 1, note), "172.17.0.2:8081",
       "useBindPortIP, port label without a binding: internal address, label port");
    IS(tt_server(bound, "80", "traefik", NULL, 1, note), "127.0.0.1:18080",
       "useBindPortIP with HostIp 127.0.0.1: HostIp:HostPort (key case ignored)");
    ok(note[0] == 0, "... no note");
    IS(tt_server(bound, "80", "traefik", NULL, 0, note), "172.17.0.3:80",
       "without useBindPortIP: internal address");
    IS(tt_server(bound, "9000", "traefik", NULL, 1, note), "172.17.0.3:9000",
       "useBindPortIP with an empty HostIp: falls back");
    IS(tt_server(bound, NULL, "traefik", NULL, 1, note),
       "SKIP: several exposed TCP ports (80, 9000) and no "
       "traefik.http.services.<name>.loadbalancer.server.port label",
       "useBindPortIP, two ports and no label: skipped");

    /* networks */
    IS(tt_server(multi, NULL, "traefik", NULL, 0, note), "10.2.0.7:8080",
       "traefik.docker.network label picks the network (port from NetworkSettings.Ports)");
    IS(tt_server(multi, NULL, "traefik", "app_back", 0, note), "10.2.0.7:8080",
       "the label wins over the provider option");
    IS(tt_server(multi, NULL, "relais", NULL, 0, note), "10.1.0.5:8080",
       "labelPrefix relais: relais.docker.network first");
    IS(tt_server(multi2, NULL, "traefik", NULL, 0, note), "10.1.0.6:8080",
       "no label, no option: the first network");
    IS(tt_server(multi2, NULL, "traefik", "app_front", 0, note), "10.2.0.8:8080",
       "provider option network");
    IS(tt_server(multi2, NULL, "relais", "app_front", 0, note), "10.2.0.8:8080",
       "provider option network (labelPrefix relais)");
    IS(tt_server(multi2, NULL, "traefik", "nope", 0, note), "10.1.0.6:8080",
       "an unknown network: the first network");
    ok(strstr(note, "network \"nope\" not found, using network \"app_back\"") != NULL,
       "... with a note (%s)", note);
    IS(tt_server(v6, NULL, "traefik", NULL, 0, note), "[fd00:1::5]:80",
       "IPv6 only: bracketed, networks without an address passed over");
    IS(tt_server(v6, NULL, "traefik", "empty", 0, note), "[fd00:1::5]:80",
       "the named network has no address: the first that has one");

    /* container:<ref> */
    IS(tt_server(jb, NULL, "traefik", NULL, 0, note), "172.17.0.2:9090",
       "container:<full id>: that container's address, own port");
    IS(tt_server(jm, NULL, "traefik", NULL, 0, note), "10.2.0.7:9090",
       "container:<name>: that container's network label applies");
    IS(tt_server(jm, NULL, "relais", NULL, 0, note), "10.1.0.5:9090",
       "container:<name>: labelPrefix relais reads relais.docker.network");
    IS(tt_server(jg, NULL, "traefik", NULL, 0, note),
       "SKIP: network mode container:deadbeef: no such running container",
       "container:<ref> not running: skipped");

    /* ports */
    IS(tt_server(several, NULL, "traefik", NULL, 0, note),
       "SKIP: several exposed TCP ports (80, 443) and no "
       "traefik.http.services.<name>.loadbalancer.server.port label",
       "several exposed TCP ports and no label: skipped, ports listed (udp ignored)");
    IS(tt_server(several, NULL, "relais", NULL, 0, note),
       "SKIP: several exposed TCP ports (80, 443) and no "
       "relais.http.services.<name>.loadbalancer.server.port label",
       "... the label named with the prefix");
    IS(tt_server(several, "443", "traefik", NULL, 0, note), "172.17.0.9:443",
       "several ports and a label: the label");
    IS(tt_server(udp, NULL, "traefik", NULL, 0, note),
       "SKIP: no exposed TCP port and no traefik.http.services.<name>.loadbalancer.server.port "
       "label",
       "UDP only: no TCP port");
    IS(tt_server(udp, "x80", "traefik", NULL, 0, note),
       "SKIP: port label \"x80\" is not a port number", "bad port label");
    IS(tt_server(udp, "65536", "traefik", NULL, 0, note),
       "SKIP: port label \"65536\" is not a port number", "port label out of range");
    IS(tt_server(udp, "65535", "traefik", NULL, 0, note), "172.17.0.10:65535",
       "port label 65535");

    /* labels */
    ok(dkt_label(multi, "traefik", "docker.network") &&
           !strcmp(dkt_label(multi, "traefik", "docker.network"), "app_front"),
       "dkt_label traefik");
    ok(dkt_label(multi2, "relais", "docker.network") == NULL, "dkt_label absent");
    ok(dkt_label(bridge, "relais", "enable") &&
           !strcmp(dkt_label(bridge, "relais", "enable"), "true"),
       "dkt_label relais falls back to traefik.*");

    for (size_t i = 0; i < tt_ndocs; i++) json_decref(tt_docs[i]);
    return tap_done();
}
