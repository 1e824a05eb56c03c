using System.Buffers;
using System.Reflection;
using System.Runtime.Loader;
using IsolateGrains.Protocol;
using MessagePack;

namespace IsolateGrains.Guest;

/// <summary>
/// Loads the user's assemblies lazily: when the guest needs an assembly that is not part of the BCL
/// or the guest runtime, it asks the host, which runs its configured loaders. With no loader that
/// knows the name, the load fails with the usual <see cref="FileNotFoundException"/> naming it.
/// </summary>
internal static class GuestAssemblyResolver
{
    private static bool s_installed;

    /// <summary>Hooks the default load context (once).</summary>
    public static void Install()
    {
        if (!s_installed)
        {
            s_installed = true;
            AssemblyLoadContext.Default.Resolving += Resolve;
        }
    }

    private static Assembly? Resolve(AssemblyLoadContext context, AssemblyName name)
    {
        var request = new ArrayBufferWriter<byte>();
        var writer = new MessagePackWriter(request);
        writer.WriteArrayHeader(2);
        writer.Write((int)HostRequestKind.LoadAssembly);
        writer.Write(name.FullName);
        writer.Flush();

        var reply = new MessagePackReader(HostConnection.Exchange(request.WrittenSpan));
        if (reply.TryReadNil())
        {
            return null;
        }
        var bytes = reply.ReadBytes() ?? throw new IOException($"The host sent no bytes for assembly '{name.FullName}'.");
        using var stream = new MemoryStream(bytes.ToArray());
        return context.LoadFromStream(stream);
    }
}
