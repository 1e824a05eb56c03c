using System.Diagnostics;
using System.Net.Sockets;

namespace IsolateGrains.Tests;

/// <summary>Nothing inside a sandbox reaches the host's files, environment, network or processes.</summary>
public sealed class IsolationTests : IDisposable
{
    private readonly IsolatedRuntime _runtime = new(TestHosts.Shared);

    [Fact]
    public void HostFilesCannotBeRead()
    {
        var ownAssembly = typeof(IsolationTests).Assembly.Location;
        Assert.True(File.Exists(ownAssembly));

        var hostname = _runtime.Invoke(() => TryRead("/etc/hostname"));
        var assembly = _runtime.Invoke(() => TryRead(ownAssembly));
        var passwd = _runtime.Invoke(() => TryRead("/etc/passwd"));
        var escape = _runtime.Invoke(() => TryRead("/tmp/../../etc/passwd"));

        Assert.StartsWith("failed:", hostname);
        Assert.StartsWith("failed:", assembly);
        Assert.StartsWith("failed:", passwd);
        Assert.StartsWith("failed:", escape);
    }

    [Fact]
    public void TheFileSystemHoldsOnlyTheRuntimeAndThePrivateScratchDirectory()
    {
        var root = _runtime.Invoke(() => string.Join(",", Directory.GetFileSystemEntries("/").Order()));

        Assert.Equal("/app,/bcl,/dev,/tmp", root);
    }

    [Fact]
    public void RuntimeFilesAreReadOnly()
    {
        var result = _runtime.Invoke(() =>
        {
            try
            {
                File.WriteAllText("/bcl/evil.dll", "x");
                return "written";
            }
            catch (Exception e)
            {
                return e.GetType().Name;
            }
        });

        Assert.NotEqual("written", result);
    }

    [Fact]
    public void ScratchFilesArePrivateToEachSandbox()
    {
        using var other = new IsolatedRuntime(TestHosts.Shared);

        var written = _runtime.Invoke(() =>
        {
            Directory.CreateDirectory("/tmp/work");
            File.WriteAllText("/tmp/work/note.txt", "mine");
            File.AppendAllText("/tmp/work/note.txt", " only");
            return File.ReadAllText("/tmp/work/note.txt");
        });
        var seenByOther = other.Invoke(() => File.Exists("/tmp/work/note.txt"));
        var seenAgain = _runtime.Invoke(() => File.ReadAllText("/tmp/work/note.txt"));

        Assert.Equal("mine only", written);
        Assert.False(seenByOther);
        Assert.Equal("mine only", seenAgain);
    }

    [Fact]
    public void ProcessesCannotBeStarted()
    {
        var result = _runtime.Invoke(() =>
        {
            try
            {
                Process.Start("/bin/sh", "-c true");
                return "started";
            }
            catch (Exception e)
            {
                return e.GetType().Name;
            }
        });

        Assert.NotEqual("started", result);
    }

    [Fact]
    public void SocketsCannotBeOpened()
    {
        using var listener = new TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        var port = ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;

        var result = _runtime.Invoke(() =>
        {
            try
            {
                using var client = new TcpClient();
                client.Connect("127.0.0.1", port);
                return "connected";
            }
            catch (Exception e)
            {
                return e.GetType().Name;
            }
        });

        Assert.NotEqual("connected", result);
        Assert.False(listener.Pending());
    }

    [Fact]
    public void TheGuestCannotSeeTheHostsProcessId()
    {
        var guestProcessId = _runtime.Invoke(() => Environment.ProcessId);

        Assert.NotEqual(Environment.ProcessId, guestProcessId);
    }

    private static string TryRead(string path)
    {
        try
        {
            return "read:" + File.ReadAllText(path).Length;
        }
        catch (Exception e)
        {
            return "failed:" + e.GetType().Name;
        }
    }

    public void Dispose() => _runtime.Dispose();
}
