using System.Runtime.InteropServices;

namespace IsolateGrains.Engine.Snapshots;

/// <summary>
/// Copies bytes into this process's own memory through the kernel (Linux <c>process_vm_writev</c> on
/// itself), many separate destinations per system call. The kernel makes each destination page private as
/// it writes (the same work as a write fault, without the trap) and copies through its own mapping, so
/// this process's page-table entries for the destination are created but never used by the CPU. On this
/// project's machines (a virtual machine where a page's first use through a new entry costs as much as a
/// fault) that made writing 1,000 scattered copy-on-write pages 1.7 µs a page instead of 6 µs with
/// <c>madvise(MADV_POPULATE_WRITE)</c> and a copy, and 15 µs with plain faults. A page the sandbox later
/// uses pays that first use then, and only then. Where the call is refused (seccomp profiles of some
/// containers) <see cref="TryWrite"/> says so and callers copy themselves.
/// </summary>
internal static unsafe partial class KernelMemoryWriter
{
    /// <summary>The most destinations one call takes (Linux's <c>IOV_MAX</c>).</summary>
    public const int MaxDestinations = 1024;

    private static readonly int s_processId = Environment.ProcessId;
    private static volatile bool s_unavailable = !OperatingSystem.IsLinux();

    /// <summary>True until the kernel has refused the call once (or off Linux).</summary>
    public static bool IsAvailable => !s_unavailable;

    /// <summary>
    /// Writes <paramref name="source"/> (<paramref name="length"/> bytes) to the destinations, in order: destination
    /// i receives the next <c>destinations[i].Length</c> bytes; their lengths add up to <paramref name="length"/>.
    /// Returns false, having written possibly part of it, when the kernel refused or wrote less: the caller then
    /// writes all of it itself.
    /// </summary>
    public static bool TryWrite(byte* source, long length, ReadOnlySpan<IoVector> destinations)
    {
        if (s_unavailable || destinations.Length > MaxDestinations)
        {
            return false;
        }
        var local = new IoVector((nint)source, (nuint)length);
        nint written;
        fixed (IoVector* remote = destinations)
        {
            try
            {
                written = ProcessVmWritev(s_processId, &local, 1, remote, (nuint)destinations.Length, 0);
            }
            catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
            {
                s_unavailable = true;
                return false;
            }
        }
        if (written < 0)
        {
            // ENOSYS, EPERM (seccomp, ptrace policy): it will not work later either. Anything else (EFAULT) is this call's problem.
            if (Marshal.GetLastPInvokeError() is 38 or 1)
            {
                s_unavailable = true;
            }
            return false;
        }
        return written == length;
    }

    /// <summary>One contiguous range of memory (<c>struct iovec</c>).</summary>
    [StructLayout(LayoutKind.Sequential)]
    public readonly struct IoVector(nint address, nuint length)
    {
        /// <summary>The range's start.</summary>
        public readonly nint Address = address;

        /// <summary>The range's length in bytes.</summary>
        public readonly nuint Length = length;
    }

    [LibraryImport("libc", EntryPoint = "process_vm_writev", SetLastError = true)]
    private static partial nint ProcessVmWritev(int pid, IoVector* localIov, nuint localCount, IoVector* remoteIov, nuint remoteCount, nuint flags);
}
