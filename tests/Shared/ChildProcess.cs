using System.Collections.Concurrent;
using System.Diagnostics;
using System.Runtime.InteropServices;

namespace IsolateGrains.Testing;

/// <summary>
/// A process a test or benchmark starts (redis-server, a silo): its output is kept (the last lines, for failure
/// messages), and it is stopped by its own id, gracefully (SIGTERM) or hard (SIGKILL).
/// </summary>
public sealed class ChildProcess : IDisposable
{
    private const int KeptLines = 300;
    private const int SigTerm = 15;
    private readonly Process _process;
    private readonly ConcurrentQueue<string> _output = new();

    private ChildProcess(string name, Process process)
    {
        Name = name;
        _process = process;
    }

    /// <summary>What the caller calls it ("redis", "silo-2").</summary>
    public string Name { get; }

    /// <summary>The operating system's process id.</summary>
    public int Id => _process.Id;

    /// <summary>Whether the process has ended.</summary>
    public bool HasExited => _process.HasExited;

    /// <summary>Starts <paramref name="fileName"/> with <paramref name="environment"/> added to this process's environment.</summary>
    public static ChildProcess Start(string name, string fileName, IEnumerable<string> arguments, string workingDirectory, IReadOnlyDictionary<string, string>? environment = null)
    {
        var info = new ProcessStartInfo(fileName)
        {
            WorkingDirectory = workingDirectory,
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }
        foreach (var (key, value) in environment ?? new Dictionary<string, string>())
        {
            info.Environment[key] = value;
        }
        var process = new Process { StartInfo = info };
        var child = new ChildProcess(name, process);
        process.OutputDataReceived += (_, e) => child.Keep(e.Data);
        process.ErrorDataReceived += (_, e) => child.Keep(e.Data);
        if (!process.Start())
        {
            throw new InvalidOperationException($"{name}: '{fileName}' did not start.");
        }
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return child;
    }

    /// <summary>The last lines the process wrote (stdout and stderr), for failure messages.</summary>
    public string Tail(int lines = 40) => string.Join(Environment.NewLine, _output.TakeLast(lines));

    /// <summary>Waits for the process to end.</summary>
    /// <returns>True if it ended within <paramref name="timeout"/>.</returns>
    public async Task<bool> WaitForExitAsync(TimeSpan timeout)
    {
        using var expiry = new CancellationTokenSource(timeout);
        try
        {
            await _process.WaitForExitAsync(expiry.Token);
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    /// <summary>The exit code (once ended).</summary>
    public int ExitCode => _process.ExitCode;

    /// <summary>
    /// Stops the process gracefully: SIGTERM, which the .NET host turns into an orderly shutdown (a silo leaves
    /// the cluster and deactivates its grains); a hard kill if it has not ended after <paramref name="grace"/>.
    /// </summary>
    /// <returns>True when it ended by itself within <paramref name="grace"/>.</returns>
    public async Task<bool> StopAsync(TimeSpan grace)
    {
        if (_process.HasExited)
        {
            return true;
        }
        if (kill(_process.Id, SigTerm) != 0)
        {
            Kill();
            return false;
        }
        if (await WaitForExitAsync(grace))
        {
            return true;
        }
        Kill();
        return false;
    }

    /// <summary>Ends the process at once (SIGKILL): no shutdown code runs, as when a machine dies.</summary>
    public void Kill()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: false);
                _process.WaitForExit(10_000);
            }
        }
        catch (InvalidOperationException)
        {
            // It ended between the check and the kill.
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        Kill();
        _process.Dispose();
    }

    private void Keep(string? line)
    {
        if (line is null)
        {
            return;
        }
        _output.Enqueue(line);
        while (_output.Count > KeptLines && _output.TryDequeue(out _))
        {
        }
    }

    // Process.Kill only sends SIGKILL; a graceful stop needs SIGTERM, sent to this process's id alone.
    [DllImport("libc", SetLastError = true)]
    private static extern int kill(int pid, int sig);
}
