using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using System.Text;

namespace IsolateGrains.Testing;

/// <summary>
/// The real processes a loopback cluster needs, shared by the cluster tests and the cluster benchmark: a
/// redis-server on a free port, the silo executable's image-cache warm-up, and where <c>dotnet</c> is.
/// </summary>
public static class LoopbackServices
{
    /// <summary>
    /// Starts redis-server on a free loopback port, without persistence (state lives for one run), and waits
    /// until it answers PING. The caller owns the process (and stops it by its id).
    /// </summary>
    /// <param name="purpose">Who needs it, for the message when redis-server is missing.</param>
    public static async Task<(ChildProcess Process, int Port)> StartRedisAsync(string purpose)
    {
        var redisServer = FindOnPath("redis-server") ?? await InstallRedisServerAsync() ?? throw new InvalidOperationException(
            $"redis-server was not found on PATH. {purpose} a real Redis on loopback; install it with: apt-get install -y redis-server");
        var port = LocalPorts.Take(1)[0];
        var redis = ChildProcess.Start("redis", redisServer,
            ["--bind", "127.0.0.1", "--port", port.ToString(CultureInfo.InvariantCulture), "--save", "", "--appendonly", "no"],
            Path.GetTempPath());
        try
        {
            await WaitForPongAsync(redis, port);
            return (redis, port);
        }
        catch
        {
            redis.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Builds the sandbox runtime image into the shared module cache once (<c>IsolateGrains.Silo --warm-cache</c>),
    /// before any silo starts: otherwise every silo would build it at the same time. Returns its last line of output.
    /// </summary>
    public static async Task<string> WarmModuleCacheAsync(string binDirectory)
    {
        // Disposing kills it by its id if it is still running (a timeout).
        using var warm = ChildProcess.Start("warm-cache", DotnetHost(), [Path.Combine(binDirectory, "IsolateGrains.Silo.dll"), "--warm-cache"], binDirectory);
        if (!await warm.WaitForExitAsync(TimeSpan.FromMinutes(3)) || warm.ExitCode != 0)
        {
            throw new InvalidOperationException($"'IsolateGrains.Silo --warm-cache' failed:{Environment.NewLine}{warm.Tail()}");
        }
        return warm.Tail(1);
    }

    /// <summary>Starts the silo executable in <paramref name="binDirectory"/> with <paramref name="environment"/>.</summary>
    public static ChildProcess StartSilo(string name, string binDirectory, IReadOnlyDictionary<string, string> environment) =>
        ChildProcess.Start(name, DotnetHost(), [Path.Combine(binDirectory, "IsolateGrains.Silo.dll")], binDirectory, environment);

    /// <summary>The dotnet executable (DOTNET_HOST_PATH, then DOTNET_ROOT, then this process if it is dotnet, then PATH).</summary>
    public static string DotnetHost() =>
        Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host && File.Exists(host) ? host
        : Environment.GetEnvironmentVariable("DOTNET_ROOT") is { Length: > 0 } root && File.Exists(Path.Combine(root, "dotnet")) ? Path.Combine(root, "dotnet")
        : Environment.ProcessPath is { } self && Path.GetFileNameWithoutExtension(self) == "dotnet" ? self
        : FindOnPath("dotnet") ?? "dotnet";

    private static readonly SemaphoreSlim s_installing = new(1, 1);

    /// <summary>
    /// On a machine that has only the .NET SDK, installs redis-server with apt-get, as <c>.ci/run</c> does: only
    /// where apt-get exists and this process runs as root (elsewhere the caller says how to install it). Where the
    /// package starts a system service (systemd), that service is stopped and disabled again: these runs start
    /// their own redis-server on a free port. Returns the installed binary, or null.
    /// </summary>
    private static async Task<string?> InstallRedisServerAsync()
    {
        if (!OperatingSystem.IsLinux() || Environment.UserName != "root" || FindOnPath("apt-get") is not { } aptGet)
        {
            return null;
        }
        await s_installing.WaitAsync();
        try
        {
            if (FindOnPath("redis-server") is { } installed)
            {
                return installed;
            }
            var environment = new Dictionary<string, string> { ["DEBIAN_FRONTEND"] = "noninteractive" };
            if (!await RunAsync(aptGet, ["install", "-y", "redis-server"], environment))
            {
                // A fresh machine may not have fetched the package lists yet.
                await RunAsync(aptGet, ["update"], environment);
                await RunAsync(aptGet, ["install", "-y", "redis-server"], environment);
            }
            if (Directory.Exists("/run/systemd/system") && FindOnPath("systemctl") is { } systemctl)
            {
                await RunAsync(systemctl, ["disable", "--now", "redis-server"], environment);
            }
            return FindOnPath("redis-server");
        }
        finally
        {
            s_installing.Release();
        }
    }

    private static async Task<bool> RunAsync(string fileName, string[] arguments, IReadOnlyDictionary<string, string> environment)
    {
        using var process = ChildProcess.Start(Path.GetFileName(fileName), fileName, arguments, Path.GetTempPath(), environment);
        return await process.WaitForExitAsync(TimeSpan.FromMinutes(5)) && process.ExitCode == 0;
    }

    /// <summary>The first file named <paramref name="name"/> in a PATH directory, or null.</summary>
    public static string? FindOnPath(string name) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "")
            .Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Select(directory => Path.Combine(directory, name))
            .FirstOrDefault(File.Exists);

    private static async Task WaitForPongAsync(ChildProcess redis, int port)
    {
        var started = Stopwatch.GetTimestamp();
        while (true)
        {
            if (redis.HasExited)
            {
                throw new InvalidOperationException($"redis-server exited ({redis.ExitCode}):{Environment.NewLine}{redis.Tail()}");
            }
            try
            {
                using var tcp = new TcpClient();
                await tcp.ConnectAsync("127.0.0.1", port);
                var stream = tcp.GetStream();
                await stream.WriteAsync("PING\r\n"u8.ToArray());
                var buffer = new byte[16];
                var read = await stream.ReadAsync(buffer).AsTask().WaitAsync(TimeSpan.FromSeconds(2));
                if (Encoding.ASCII.GetString(buffer, 0, read).StartsWith("+PONG", StringComparison.Ordinal))
                {
                    return;
                }
            }
            catch (Exception e) when (e is SocketException or IOException or TimeoutException)
            {
                // Not listening yet.
            }
            if (Stopwatch.GetElapsedTime(started) > TimeSpan.FromSeconds(20))
            {
                throw new TimeoutException($"redis-server did not answer PING on port {port}:{Environment.NewLine}{redis.Tail()}");
            }
            await Task.Delay(100);
        }
    }
}
